"""``python -m services.audit``: run the audit service."""

from services.audit.app import BLUEPRINT
from services.common.bootstrap import serve
from services.runtime import run

run(lambda: serve(BLUEPRINT))
