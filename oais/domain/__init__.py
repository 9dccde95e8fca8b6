"""The pure core: fixity values, package descriptions, PREMIS events and agents.

Standard library only: no I/O, no clock, no randomness. Time and identifiers are passed in.
"""
