"""Install pip into a virtualenv created without it (Debian's python3 lacks ensurepip
unless python3-venv is installed). Uses only the standard library and PyPI.

Usage: python3 scripts/bootstrap_pip.py .venv/bin/python
"""

import hashlib
import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from urllib.parse import urljoin

PYPI_JSON = "https://pypi.org/pypi/pip/json"


def main(venv_python: str) -> None:
    with urllib.request.urlopen(PYPI_JSON, timeout=60) as response:  # noqa: S310 (fixed https URL)
        release = json.load(response)
        index_url = response.geturl()
    wheel = next(f for f in release["urls"] if f["packagetype"] == "bdist_wheel")
    # Mirrors may answer with file URLs relative to the JSON document.
    wheel_url = urljoin(index_url, wheel["url"])
    with urllib.request.urlopen(wheel_url, timeout=120) as response:  # noqa: S310
        content = response.read()
    if hashlib.sha256(content).hexdigest() != wheel["digests"]["sha256"]:
        raise SystemExit("pip wheel checksum mismatch; not installing it")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / wheel["filename"]
        path.write_bytes(content)
        # A pip wheel can run itself: <wheel>/pip is importable from the zip.
        subprocess.run(  # noqa: S603 (the interpreter path comes from the Makefile)
            [venv_python, str(path / "pip"), "install", "--quiet", str(path)], check=True
        )


if __name__ == "__main__":
    main(sys.argv[1])
