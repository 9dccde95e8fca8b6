"""Dissemination Information Packages: rendering an order's AIP files into a checksummed BagIt zip.

``dip.model``       values: ``DipInput``, ``TransformSpec`` / ``parse_transform``, ``OutputFile``, errors
``dip.transforms``  the registry ``TRANSFORMS`` (original, quicklook, headers, votable, cutout, decompress)
``dip.package``     ``build_dip_zip``: a reproducible BagIt 1.0 bag inside a zip, written atomically
``dip.render``      ``render_order``: all of the above for one order

dip reads only what it is given (readable copies of AIP files); it never touches the catalog or storage.
"""
