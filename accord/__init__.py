"""accord: train image classifiers with agreement between augmented views.

AgMax (Atienza, WACV 2022), Tied-Augment (Kurtulus et al., ICML 2023), AugMix-JSD and CE / label
smoothing baselines on any timm model. The layout follows the data path:
``data`` -> ``views`` -> ``models`` -> ``losses`` -> ``engine`` -> ``cli``.
"""

__version__ = "0.1.0"
