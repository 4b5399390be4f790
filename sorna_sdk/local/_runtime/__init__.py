"""The kernel runtime of the local gateway: kernels, drivers, processes, terminals, pool,
registry, limits, files and the sandbox.

It returns typed results and knows neither HTTP nor any wire dialect; the HTTP package
(:mod:`sorna_sdk.local._http`) renders it in each dialect. Where things live:

* a language: :mod:`.languages` (one record each) and, if it needs one, a file in
  ``drivers/``; the messages between gateway and drivers: :mod:`.protocol`;
* a limit: :mod:`.limits`; run semantics: :mod:`.kernel`; lifecycle and quotas:
  :mod:`.registry`, its events: :mod:`.events`; processes and their tree: :mod:`.process`,
  :mod:`.sandbox`; a kernel's folder: :mod:`.files` (uploads, output scans, removal) and
  :mod:`.browse` (listings and downloads).
"""
