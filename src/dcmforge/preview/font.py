"""A tiny bitmap font, as data: 5 x 7 glyphs for the letters, digits and signs a preview writes.

Each glyph is seven rows of five cells, "#" ink and "." paper. Lower-case
letters are drawn as capitals, except "m" (for "mm"); a character the font
lacks is drawn as "?".
"""

import functools

import numpy as np

GLYPH_WIDTH, GLYPH_HEIGHT = 5, 7
ADVANCE = GLYPH_WIDTH + 1  # one column of paper between characters

_ROWS = {
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "###.. #..#. #...# #...# #...# #..#. ###..",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "m": "..... ..... ##.#. #.#.# #.#.# #...# #...#",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    " ": "..... ..... ..... ..... ..... ..... .....",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    ",": "..... ..... ..... ..... .##.. ..#.. .#...",
    "-": "..... ..... ..... ##### ..... ..... .....",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    "=": "..... ..... ##### ..... ##### ..... .....",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    "/": "..... ....# ...#. ..#.. .#... #.... .....",
    "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    "_": "..... ..... ..... ..... ..... ..... #####",
    "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
}

# character -> boolean [7, 5] ink mask
GLYPHS = {
    char: np.array([[cell == "#" for cell in row] for row in rows.split()], dtype=bool) for char, rows in _ROWS.items()
}


def glyph(char):
    """The ink mask of one character (capitals for letters the font has only in upper case)."""
    return GLYPHS.get(char) if char in GLYPHS else GLYPHS.get(char.upper(), GLYPHS["?"])


def text_size(text, scale=1):
    """(width, height) in pixels of text drawn at scale."""
    return (max(len(text) * ADVANCE - 1, 0) * scale, GLYPH_HEIGHT * scale)


@functools.lru_cache(maxsize=256)
def _scaled(char, scale):
    return glyph(char).repeat(scale, axis=0).repeat(scale, axis=1)


def text_mask(text, scale=1):
    """The ink of a line of text as a boolean [rows, columns] mask."""
    width, height = text_size(text, scale)
    mask = np.zeros((height, width), bool)
    for n, char in enumerate(text):
        mask[:, n * ADVANCE * scale : n * ADVANCE * scale + GLYPH_WIDTH * scale] = _scaled(char, scale)
    return mask


def draw_text(canvas, text, top, left, colour, scale=1):
    """Draw text in colour (a pixel value) on a canvas, its top-left corner at (top, left); ink outside is clipped."""
    mask = text_mask(text, scale)
    rows = slice(max(top, 0), min(top + mask.shape[0], canvas.shape[0]))
    columns = slice(max(left, 0), min(left + mask.shape[1], canvas.shape[1]))
    visible = mask[rows.start - top : rows.stop - top, columns.start - left : columns.stop - left]
    canvas[rows, columns][visible] = colour
