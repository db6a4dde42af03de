"""``python -m services.inventory``: run the inventory service (settings from the environment)."""

from services.common.bootstrap import serve
from services.inventory.app import BLUEPRINT
from services.runtime import run

run(lambda: serve(BLUEPRINT))
