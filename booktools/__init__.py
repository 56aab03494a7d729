"""booktools: the tools that check and transform the book's notebooks (not part of the llmbook package).

- :mod:`booktools.nbval_policy`: a pytest plugin on top of nbval, the book's policy for comparing stored outputs
  (exact by default, within a declared tolerance, or run-dependent and checked by claims), with a report of the
  share compared exactly.
- :mod:`booktools.cpu_paths`: the environment variables that move PyTorch, MKL, oneDNN and OpenBLAS to another
  CPU code path, so that one machine can show what another CPU would compute.
- :mod:`booktools.benchmarking`: what the scripts in ``benchmarks/`` share: stated targets (a miss exits 1), the
  machine a measurement ran on, and the JSON result stored in ``benchmarks/results/``.
- :mod:`booktools.performance`: renders the README's performance section and the instructor guide's timings from
  those stored results (``--check`` reports a stale one).
- :mod:`booktools.student`, :mod:`booktools.student_check`: the student notebooks (worked solutions removed, answer
  cells added) and the check that each one runs (``make student``, ``make student-check``).
- :mod:`booktools.otter_export`, :mod:`booktools.autograde`: the otter-grader export of the graded exercises, built
  from the records of ``llmbook.exercises``, and the end-to-end grading check (``make autograde-check``).
- :mod:`booktools.clean`: how executed notebooks are stored; :mod:`booktools.site_links` and
  :mod:`booktools.site_check`: the built site's links, and the site in a real browser (``make links``,
  ``make site-check``).

The command-line scripts in ``scripts/`` are thin wrappers of these modules, with the same arguments.
"""
