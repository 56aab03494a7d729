"""Tests of llmbook.plotting: the book style sets what it promises, and its colours survive colour-vision deficiency."""

import itertools

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pytest

from llmbook.plotting import DIVERGING_CMAP, OKABE_ITO, PALETTE, SEQUENTIAL_CMAP, use_book_style

# Machado, Oliveira & Fernandes (2009): full dichromacy simulated as a linear map of linear-light sRGB.
DICHROMACY = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
}


def _linear(rgb):
    rgb = np.asarray(rgb, dtype=float)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def _lab(linear_rgb):
    """CIELAB (D65) of linear-light sRGB colours, shape (n, 3)."""
    xyz = linear_rgb @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=-1)


def _closest_pair(colours, deficiency=None):
    """The smallest colour difference (CIE76 delta E) between two of ``colours``, as seen with ``deficiency``."""
    linear = _linear([mpl.colors.to_rgb(c) for c in colours])
    if deficiency is not None:
        linear = np.clip(linear @ np.array(DICHROMACY[deficiency]).T, 0, 1)
    lab = _lab(linear)
    return min(np.linalg.norm(lab[i] - lab[j]) for i, j in itertools.combinations(range(len(colours)), 2))


@pytest.fixture()
def book_style():
    backend = mpl.get_backend()
    plt.switch_backend("Agg")  # no display needed
    try:
        with mpl.rc_context():  # restores every setting afterwards
            use_book_style()
            yield
    finally:
        plt.close("all")
        plt.switch_backend(backend)


def test_the_palette_is_okabe_ito_with_black_last():
    assert len(PALETTE) == len(set(PALETTE)) == 8
    assert set(PALETTE) == set(OKABE_ITO.values())
    assert PALETTE[-1] == OKABE_ITO["black"]  # kept for reference lines


@pytest.mark.parametrize("deficiency", [None, *DICHROMACY])
def test_every_pair_of_palette_colours_stays_distinct_under_colour_blindness(deficiency):
    # delta E above 12 is a clearly visible difference; Okabe-Ito keeps at least 16 for every pair even under full
    # protanopia, deuteranopia and tritanopia. The same check rejects matplotlib's default colours (tab10), whose
    # orange and green merge for a protanope (delta E below 5), so it can tell a safe palette from an unsafe one.
    assert _closest_pair(PALETTE, deficiency) > 12
    tab10 = mpl.rcParamsDefault["axes.prop_cycle"].by_key()["color"]
    if deficiency in ("protanopia", "deuteranopia"):
        assert _closest_pair(tab10, deficiency) < 12


def test_use_book_style_sets_the_colour_cycle_and_figure_defaults(book_style):
    assert mpl.rcParams["axes.prop_cycle"].by_key()["color"] == PALETTE
    assert mpl.rcParams["image.cmap"] == SEQUENTIAL_CMAP
    assert mpl.rcParams["axes.grid"] and not mpl.rcParams["axes.spines.top"] and not mpl.rcParams["axes.spines.right"]
    fig, ax = plt.subplots()
    lines = [ax.plot([0, 1], [i, i])[0] for i in range(len(PALETTE) + 1)]
    image = ax.imshow(np.eye(3))
    assert [mpl.colors.to_hex(line.get_color()).upper() for line in lines] == PALETTE + PALETTE[:1]  # wraps round
    assert image.get_cmap().name == SEQUENTIAL_CMAP
    assert tuple(fig.get_size_inches()) == (6.4, 4.0) and fig.dpi == 100
    fig.canvas.draw()  # renders with the Agg backend without error


def test_use_book_style_leaves_fonts_text_and_backend_alone():
    # a style that picked a font family or LaTeX text would fail on a reader's machine without that font or TeX
    with mpl.rc_context(mpl.rcParamsDefault):
        before = dict(mpl.rcParams)
        use_book_style()
        changed = {k for k in before if mpl.rcParams[k] != before[k]}
    assert {"axes.prop_cycle", "figure.figsize", "axes.grid", "axes.spines.top", "axes.spines.right"} <= changed
    assert not [k for k in changed if k.startswith(("font.family", "font.sans-serif", "font.serif", "text.",
                                                    "backend", "savefig.format", "pdf.", "svg."))]


def test_the_colour_maps_are_perceptually_ordered():
    # the sequential map gets lighter from end to end (unlike "jet"), so order reads as lightness, also in grey;
    # the diverging map is lightest in the middle and dark at both ends, for values on either side of zero
    def lightness(name, n=64):
        colours = mpl.colormaps[name](np.linspace(0, 1, n))[:, :3]
        return _lab(_linear(colours))[:, 0]

    sequential = lightness(SEQUENTIAL_CMAP)
    assert np.all(np.diff(sequential) > 0)
    assert not np.all(np.diff(lightness("jet")) > 0)  # the check can fail
    diverging = lightness(DIVERGING_CMAP, 65)
    assert diverging.argmax() in range(28, 37) and diverging[32] > 90
    assert diverging[0] < 40 and diverging[-1] < 40
