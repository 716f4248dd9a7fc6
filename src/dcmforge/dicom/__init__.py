"""The DICOM encoder: the PS3.6 tag table, the VR encoders, datasets and Part 10 files.

Nothing is imported here, so each user loads only the modules it needs.
"""
