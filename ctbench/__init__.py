"""ctbench: does a 3D medical VLM read the CT volume, or lean on language priors?"""

__version__ = "0.2.0"
