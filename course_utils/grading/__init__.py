"""The grading machinery: what runs a notebook the way the grader does, shared by the instructor's
grader (``autograder``) and the students' self-check (``course_utils.selfcheck``).

======================  ===========================================================================
``session``             :class:`KernelSession`: a fresh, limited IPython kernel (time, memory, output caps)
``zygote``              the kernels' fork server, the memory watchdog, process helpers
``kernel``              the kernel process itself: instructor packages hidden, rlimits, probe entry armed
``runtime``             the armed probe entry point inside the kernel; signs the observations it returns
``sandbox``             the walls around a graded kernel (bubblewrap, or a user of its own)
``replay``              one loop that replays a notebook's cells, skipping a cell that kills the kernel
======================  ===========================================================================

Nothing here holds a solution or a judge: it ships in the student wheel because the self-check uses it.
"""
