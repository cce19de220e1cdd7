"""Static (image) worlds rendered with Blender's Python module ``bpy``.

``scenes.static.blender`` holds the bpy helpers every Blender world shares;
importing this package (or that module) never imports ``bpy`` itself.
"""
