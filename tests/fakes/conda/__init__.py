"""Test stand-ins for Miniconda/Miniforge installers, conda and conda channels (see README.md)."""
