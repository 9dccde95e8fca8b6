"""Reference: ocfl-py (2.1) builds one OCFL object (v1, sha512) from a folder.

    python bench/ocflpy_create.py SRC OBJDIR

Uses the library's own API, ``ocfl.Object(...).create(srcdir, metadata, objdir)``, the same code
path as ``ocfl-object.py create --srcdir SRC --objdir OBJDIR``.
"""

from __future__ import annotations

import logging
import sys

import ocfl


def main() -> None:
    src, objdir = sys.argv[1], sys.argv[2]
    logging.basicConfig(level=logging.WARNING)
    obj = ocfl.Object(identifier="urn:oais-bench:ocflpy-reference")
    obj.create(srcdir=src, metadata=ocfl.VersionMetadata(message="bench reference", name="bench"), objdir=objdir)


if __name__ == "__main__":
    main()
