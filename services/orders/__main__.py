"""``python -m services.orders``: run the orders service."""

from services.common.bootstrap import serve
from services.orders.app import BLUEPRINT
from services.runtime import run

run(lambda: serve(BLUEPRINT))
