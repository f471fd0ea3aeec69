"""File I/O: images, video, atomic writes, colour maps."""
