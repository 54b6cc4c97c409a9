"""核实 on request: the centre asks "is it still there?"; the cameras that cover the place look at their next frame."""
