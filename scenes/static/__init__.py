"""Static (image) worlds rendered with Blender's Python module ``bpy``.

Blender helpers live in :mod:`crlgen.scenes.engines.blender`; importing this package
never imports ``bpy`` itself.
"""
