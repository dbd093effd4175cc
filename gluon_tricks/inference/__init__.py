"""Using trained weights and exports (eval, export, predict): what the weights were trained with,
images prepared as validation prepares them, and exports verified before they run."""
