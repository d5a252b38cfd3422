"""mos-fairseq: hardware-aware NAS of Transformers (HAT, Mixture-of-Supernets) as a fairseq plugin.

fairseq itself comes from the ``ve-fairseq`` wheel, installed with ``--no-deps`` (its torchaudio
requirement would replace the CPU torch); ``make setup`` does this. It is therefore not listed
in ``install_requires``.
"""
from setuptools import find_packages, setup

setup(
    name="mos-fairseq",
    version="0.1.0",
    description="Hardware-aware NAS of Transformers (HAT, Mixture-of-Supernets) as a fairseq plugin",
    python_requires=">=3.10",
    packages=find_packages(include=["mos_fairseq", "mos_fairseq.*"]) + ["mos_fairseq.configs"],
    package_dir={"mos_fairseq.configs": "configs"},
    package_data={"mos_fairseq.configs": ["spaces/*.yml", "*.yml"]},
    install_requires=[
        "torch>=2.6",
        "numpy",
        "pyyaml",
        "sentencepiece",
        "sacrebleu>=2",
        "hydra-core>=1.3",
        "omegaconf>=2.1",
        "bitarray",
        "regex",
        "cython",
        "scikit-learn",
        "scipy",
        "matplotlib",
        "safetensors",
        "tqdm",
        "psutil",
    ],
    extras_require={"test": ["pytest"]},
    entry_points={"console_scripts": ["mos-nas=mos_fairseq.cli:main"]},
)
