"""Evaluation: input events checked and identified (``events``), the World's declared state
(``state``), its step semantics (``engine``, ``queries``), its records (``records``), one
history replayed (``evaluate``) and the output data (``decision``)."""
