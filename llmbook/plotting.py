"""The book's figure style: colour-blind-safe colours and readable defaults (every chapter, from chapter 1).

The palette is Okabe and Ito's eight colours, which stay distinguishable under the common forms of
colour-vision deficiency. Figures use English text only (CJK fonts may be missing on a reader's machine).
"""

from __future__ import annotations

import matplotlib as mpl
from cycler import cycler

__all__ = ["OKABE_ITO", "PALETTE", "SEQUENTIAL_CMAP", "DIVERGING_CMAP", "use_book_style"]

#: Okabe–Ito colour-blind-safe palette (black last, since it is used for reference lines).
OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "black": "#000000",
}
#: The order in which the book's figures use the Okabe–Ito colours.
PALETTE = [OKABE_ITO[k] for k in ("blue", "orange", "bluish_green", "vermillion", "reddish_purple",
                                   "sky_blue", "yellow", "black")]
#: A perceptually uniform, colour-blind-friendly colormap for heatmaps.
SEQUENTIAL_CMAP = "viridis"
#: A colour-blind-friendly diverging colormap, for values on both sides of zero.
DIVERGING_CMAP = "PuOr"


def use_book_style() -> None:
    """Apply the book's matplotlib defaults (palette, sizes, grid)."""
    mpl.rcParams.update(
        {
            "axes.prop_cycle": cycler(color=PALETTE),
            "figure.figsize": (6.4, 4.0),
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 11,
            "axes.titlesize": 12,
            "legend.frameon": False,
            "image.cmap": SEQUENTIAL_CMAP,
        }
    )
