"""``blurpool(stride=2)``: blur with a fixed binomial filter, then subsample (Zhang 2019).

The record is all netdsl needs: the shape rule, parameter count, MACs and receptive field let
``netdsl check`` and ``summary`` work without torch; ``torch`` names the module to emit. This
file imports no torch, so ``netdsl check`` stays fast with the plugin installed.
"""

from netdsl import OpRecord, Param, TorchModule, Window


def _infer(attrs, ins):
    c, h, w = ins[0]
    s = attrs["stride"]
    return (c, (h + 2 - 3) // s + 1, (w + 2 - 3) // s + 1)  # 3x3 window, padding 1


RECORD = OpRecord(
    name="blurpool",
    doc="Anti-aliased downsampling: a fixed 3x3 binomial blur per channel, then stride.",
    params=(Param("stride", "count", 2),),
    arity=1,
    infer=_infer,
    count_params=lambda attrs, ins: 0,  # the filter is a buffer, not a parameter
    # one 3x3 depthwise convolution: 9 multiply-accumulates per output value
    macs=lambda attrs, ins, out: 9 * out[0] * out[1] * out[2],
    window=lambda attrs, ins, out: Window((3, 3), (attrs["stride"], attrs["stride"])),
    view=False,
    inplace=False,
    backward_needs_output=False,
    weight_layer=False,
    ends_features=False,
    init_role=None,
    torch=TorchModule("netdsl_blurpool.layers.BlurPool",
                      lambda attrs, ins, inplace: ((ins[0][0],), {"stride": attrs["stride"]})),
    display=lambda attrs, out: f"blurpool /{attrs['stride']}",
    style="pool",
    trailing=False,
)
