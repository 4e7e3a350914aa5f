"""The counting network and its serving code, shared by training and inference.

This package is copied whole into every model artifact (``code/model/``), so it must not
import anything from the rest of the repository.
"""
