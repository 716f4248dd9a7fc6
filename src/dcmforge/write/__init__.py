"""Writing a series: the plan, the two sinks (single-frame files, one multi-frame file),
the study two series share, and the commit that makes a series appear whole or not at all.

Nothing is imported here, so each user loads only the modules it needs.
"""
