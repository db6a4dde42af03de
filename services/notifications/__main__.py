"""``python -m services.notifications``: run the notifications service."""

from services.common.bootstrap import serve
from services.notifications.app import BLUEPRINT
from services.runtime import run

run(lambda: serve(BLUEPRINT))
