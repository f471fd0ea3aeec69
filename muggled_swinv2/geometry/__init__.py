"""Pure geometry on depth maps (torch or numpy, no file I/O): `stereo.py` renders a second eye
from a picture and its depth, `stereo_layouts.py` packs two eyes into the frames people view and
reports their comfort."""
