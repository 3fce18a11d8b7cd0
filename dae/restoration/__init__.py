"""Plug-and-play restoration: the project's noise-conditional denoisers as image priors for
deblurring, super-resolution, demosaicing and inpainting, with no retraining.

    operators    the degradations (blur, down-sampling, Bayer mosaics, masks) and their exact
                 data steps
    solver       half-quadratic splitting with any denoiser told a level (DPIR's schedule)
    kernels      blur kernels from files (.npy, images, the field's .mat files) or made
    demosaicing  Bayer patterns, bilinear and Malvar-He-Cutler demosaicing
    tasks        each task's operator and measured defaults; restoring files (the CLI's work)
"""
