"""Brazil drawn from data shipped here (no map tiles, no download): the approximate
geographic centre of each of the 27 UFs, for a bubble map by UF in Vega-Lite."""

from __future__ import annotations

from typing import Final

# UF: (latitude, longitude) of the state's approximate geographic centre.
UF_CENTRES: Final[dict[str, tuple[float, float]]] = {
    "AC": (-9.0, -70.5),
    "AL": (-9.6, -36.6),
    "AM": (-4.5, -64.5),
    "AP": (1.4, -51.8),
    "BA": (-12.5, -41.7),
    "CE": (-5.2, -39.5),
    "DF": (-15.8, -47.8),
    "ES": (-19.6, -40.7),
    "GO": (-15.9, -49.6),
    "MA": (-5.0, -45.3),
    "MG": (-18.5, -44.6),
    "MS": (-20.5, -54.8),
    "MT": (-12.9, -56.0),
    "PA": (-4.0, -52.5),
    "PB": (-7.2, -36.8),
    "PE": (-8.4, -37.9),
    "PI": (-7.5, -42.8),
    "PR": (-24.6, -51.6),
    "RJ": (-22.3, -42.7),
    "RN": (-5.8, -36.6),
    "RO": (-10.9, -62.8),
    "RR": (2.0, -61.4),
    "RS": (-29.8, -53.3),
    "SC": (-27.3, -50.4),
    "SE": (-10.6, -37.4),
    "SP": (-22.3, -48.7),
    "TO": (-10.2, -48.3),
}
