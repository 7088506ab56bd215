"""accord: train image classifiers with agreement between augmented views.

AgMax (Atienza, WACV 2022), Tied-Augment (Kurtulus et al., ICML 2023), AugMix-JSD and CE / label
smoothing baselines on any timm model. The layers import one way, following the data path:
``data`` -> ``views`` -> ``models`` -> ``losses`` -> ``config`` -> ``engine``/``timm_loop`` -> evaluation, export,
bench, grid -> reports -> ``cli`` (README's Layout; ``tests/test_layers.py`` checks it).
"""

__version__ = "0.1.0"
