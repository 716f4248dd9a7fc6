"""Test inputs shared by the series and multi-frame tests: voxels and an oblique geometry."""

import math

import numpy as np


def activity(shape, seed=0, scale=1000.0):
    """Random non-negative float32 voxels."""
    return (np.random.default_rng(seed).random(shape) * scale).astype(np.float32)


def oblique_affine(spacing=(2.0, 3.0, 4.0), origin=(-30.5, 12.25, 101.0), degrees=30.0):
    """An LPS affine rotated about the patient's z and then x axes (no axis is along a patient axis)."""
    a, b = math.radians(degrees), math.radians(degrees / 2)
    about_z = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    about_x = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    affine = np.eye(4)
    affine[:3, :3] = about_x @ about_z @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine
