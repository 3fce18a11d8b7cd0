"""What each command does, as library functions: compare (train and compare models), evaluate
(a checkpoint's metrics), sweep (every model at several noise levels), denoise (one's own
images). The experiments/ front-ends parse their flags and call one of these."""
