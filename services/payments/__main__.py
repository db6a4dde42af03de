"""``python -m services.payments``: run the payments service (settings from the environment)."""

from services.common.bootstrap import serve
from services.payments.app import BLUEPRINT
from services.runtime import run

run(lambda: serve(BLUEPRINT))
