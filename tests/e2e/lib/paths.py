"""Where things are: the repository root, the binaries under test, fixtures."""
import os
from pathlib import Path

E2E_DIR = Path(__file__).resolve().parent.parent
ROOT = E2E_DIR.parent.parent
FIXTURES = E2E_DIR / "fixtures"
SCHOOL_ORG = FIXTURES / "school-org.json"


def _binary(env_name, default):
    value = os.environ.get(env_name)
    return Path(value).resolve() if value else (ROOT / default)


def localforce_bin():
    """$LOCALFORCE_BIN, default build/localforce."""
    return _binary("LOCALFORCE_BIN", "build/localforce")


def sfbridge_bin():
    """$SFBRIDGE_BIN, default build/sfbridge."""
    return _binary("SFBRIDGE_BIN", "build/sfbridge")
