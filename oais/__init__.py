"""oais-archive: a long-term archive for space-science data (OAIS, OCFL, METS/PREMIS, BagIt)."""

__version__ = "0.1.0"
