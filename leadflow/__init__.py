"""leadflow's composition root: settings, the `leadflow` command line and the simulator."""
