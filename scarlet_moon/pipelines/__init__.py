"""The use cases, one function each, that the CLI, the studio, `bench/` and the Python API call:

    generate_sprites(spec)                    sprites.py: sprites with what regenerates each
    make_sheet(spec, out, formats, pack)      sheet.py: generate, pack, write the sheet and atlases
    pack_folder(folder, out, formats, pack)   sheet.py: a folder of PNGs packed the same way
    make_tileset(options, out, formats)       tileset.py: a Wang tileset, packed the same way

Each takes typed options, checks every input and output before any sampling, and reports progress
through a scarlet_moon.progress.Report (silent by default).
"""
