"""CPU-fast equivalents of stock flax layers: same function, same parameter shapes and init.

XLA:CPU runs plain stride-1 convolutions (forward and both gradients) well, but not the gradients
of `lax.conv_transpose` (an lhs-dilated convolution) nor the `select_and_scatter` gradient of
`nn.max_pool` (see jax-ml/jax#23783), and it sums a bias's gradient over the batch and the image
(a reduction it splits into slow reduce-windows) several times slower than one matrix-vector
product. The layers here rewrite those into forms it runs well (docs/performance.md has the
figures); tests/test_layers.py checks outputs and gradients against `nn.Conv`,
`nn.ConvTranspose` and `nn.max_pool`.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax


@jax.custom_vjp
def add_bias(x_BHWC: jnp.ndarray, bias_C: jnp.ndarray) -> jnp.ndarray:
    """`x_BHWC + bias_C`, whose gradient sums the cotangent over B, H and W as ones @ (BHW, C)."""
    return x_BHWC + bias_C.reshape(1, 1, 1, -1)


def _add_bias_fwd(x_BHWC, bias_C):
    return add_bias(x_BHWC, bias_C), None


def _add_bias_bwd(_, cotangent_BHWC):
    C = cotangent_BHWC.shape[-1]
    rows_NC = cotangent_BHWC.reshape(-1, C)
    # Summed in float32 whatever the compute dtype (bfloat16: 65,536 rows a 64x64 batch).
    sum_C = jnp.dot(jnp.ones(rows_NC.shape[0], rows_NC.dtype), rows_NC,
                    preferred_element_type=jnp.float32)
    return cotangent_BHWC, sum_C.astype(rows_NC.dtype)


add_bias.defvjp(_add_bias_fwd, _add_bias_bwd)


class Conv(nn.Module):
    """`nn.Conv(features, (k, k), padding='SAME')`: the same convolution, parameters and init,
    with its bias added by `add_bias`. Named Conv, so flax names its instances (and their
    parameters) as it names nn.Conv's."""

    features: int
    kernel_size: tuple[int, int] = (3, 3)
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x_BHWC: jnp.ndarray) -> jnp.ndarray:
        C, F = x_BHWC.shape[-1], self.features
        kernel = self.param("kernel", self.kernel_init, (*self.kernel_size, C, F))
        bias = self.param("bias", self.bias_init, (F,))
        x_BHWC, kernel, bias = nn.dtypes.promote_dtype(x_BHWC, kernel, bias)  # as flax layers do
        y_BHWF = lax.conv_general_dilated(x_BHWC, kernel, window_strides=(1, 1), padding="SAME",
                                          dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return add_bias(y_BHWF, bias)


def max_pool_2x2(x_BHWC: jnp.ndarray) -> jnp.ndarray:
    """`nn.max_pool(x, (2, 2), strides=(2, 2))` as reshape-and-max (its gradient is ~10x faster)."""
    B, H, W, C = x_BHWC.shape
    if H % 2 or W % 2:
        raise ValueError(f"max_pool_2x2 needs even height and width, got {H}x{W}")
    return x_BHWC.reshape(B, H // 2, 2, W // 2, 2, C).max(axis=(2, 4))


# Sub-pixel form of a 3x3, stride-2, 'SAME' transposed convolution (flax's, kernel not flipped).
# Output row 2m takes input rows m-1 and m with kernel rows 0 and 2; output row 2m+1 takes input
# row m with kernel row 1 (and likewise for columns). With the input padded by one row and column
# in front, every output phase is a 2x2 stride-1 convolution: tap t in {0, 1} of phase p uses
# kernel index _SUBPIXEL_TAP[p][t], or nothing where it is None.
_SUBPIXEL_TAP = ((0, 2), (None, 1))


def subpixel_kernel(kernel_33CF: jnp.ndarray) -> jnp.ndarray:
    """(3, 3, C, F) transposed-conv kernel -> (2, 2, C, 4F) kernel; output channels are (p, q, f)."""
    C, F = kernel_33CF.shape[2:]
    zero_CF = jnp.zeros((C, F), kernel_33CF.dtype)
    taps = [
        [
            jnp.concatenate(
                [
                    zero_CF
                    if _SUBPIXEL_TAP[p][a] is None or _SUBPIXEL_TAP[q][b] is None
                    else kernel_33CF[_SUBPIXEL_TAP[p][a], _SUBPIXEL_TAP[q][b]]
                    for p in range(2)
                    for q in range(2)
                ],
                axis=-1,
            )
            for b in range(2)
        ]
        for a in range(2)
    ]
    return jnp.stack([jnp.stack(row) for row in taps])


class ConvTranspose3x3s2(nn.Module):
    """`nn.ConvTranspose(features, (3, 3), strides=(2, 2), padding='SAME')`, as a sub-pixel conv.

    One stride-1 2x2 convolution to 4x the channels, then depth-to-space. On XLA:CPU its training
    step is ~3x faster than the lhs-dilated convolution that `lax.conv_transpose` lowers to.
    """

    features: int
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x_BHWC: jnp.ndarray) -> jnp.ndarray:
        B, H, W, C = x_BHWC.shape
        F = self.features
        kernel = self.param("kernel", self.kernel_init, (3, 3, C, F))
        bias = self.param("bias", self.bias_init, (F,))
        x_BHWC, kernel, bias = nn.dtypes.promote_dtype(x_BHWC, kernel, bias)  # as flax layers do
        y_BHW4F = lax.conv_general_dilated(
            x_BHWC,
            subpixel_kernel(kernel),
            window_strides=(1, 1),
            padding=((1, 0), (1, 0)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        y_BHWF = y_BHW4F.reshape(B, H, W, 2, 2, F).transpose(0, 1, 3, 2, 4, 5)
        return y_BHWF.reshape(B, 2 * H, 2 * W, F) + bias.reshape(1, 1, 1, F)


def pixel_unshuffle(x_BHWC: jnp.ndarray, factor: int = 2) -> jnp.ndarray:
    """Space-to-depth: (B, H, W, C) -> (B, H/f, W/f, f*f*C), channels ordered (row, column, c)."""
    B, H, W, C = x_BHWC.shape
    if H % factor or W % factor:
        raise ValueError(f"pixel_unshuffle by {factor} needs height and width divisible by "
                         f"{factor}, got {H}x{W}")
    x_BhpwqC = x_BHWC.reshape(B, H // factor, factor, W // factor, factor, C)
    return x_BhpwqC.transpose(0, 1, 3, 2, 4, 5).reshape(B, H // factor, W // factor,
                                                        factor * factor * C)


def pixel_shuffle(x_BHWC: jnp.ndarray, factor: int = 2) -> jnp.ndarray:
    """Depth-to-space, the inverse of `pixel_unshuffle`: (B, H, W, f*f*C) -> (B, fH, fW, C)."""
    B, H, W, C4 = x_BHWC.shape
    if C4 % (factor * factor):
        raise ValueError(f"pixel_shuffle by {factor} needs channels divisible by "
                         f"{factor * factor}, got {C4}")
    C = C4 // (factor * factor)
    x_BhwpqC = x_BHWC.reshape(B, H, W, factor, factor, C)
    return x_BhwpqC.transpose(0, 1, 3, 2, 4, 5).reshape(B, H * factor, W * factor, C)
