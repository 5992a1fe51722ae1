"""Receptive fields through merges (issue 26, item 5): a squeeze-excitation's pooled weights,
broadcast over the map they scale, add one fixed window to every position, never their
jump (a whole grid's); the classifier's features are the pool every path goes through."""

from __future__ import annotations

import netdsl
from netdsl.passes.analyse import summarize
from netdsl.passes.fields import input_window, receptive_fields

SE = """network t:
    input 3x16x16
    conv(8, 3x3, stride=2, pad=1) -> se(2) -> conv(8, 3x3, pad=1) -> se(2)
    gap -> flatten -> fc(4)
"""


def test_squeeze_excitation_keeps_the_maps_jump_and_adds_its_fixed_window():
    graph = netdsl.compile(SE)
    fields = receptive_fields(graph)
    muls = [n.id for n in graph.nodes if n.op == "mul"]
    # conv/2 on 16: the 8x8 map's central value sees 3 px, jump 2; the pooled weights see
    # the whole padded grid: rows -1 .. 7 * 2 + 1 = 15, 17 px
    assert fields[muls[0]] == ((17, 17), (2, 2))
    # the next 3x3 widens each position by 2 jumps; the second SE's fixed window is that of
    # every position: rows -3 .. 17, 21 px (not 17 + 7 * 17 through a 16-px jump)
    assert fields[muls[1]] == ((21, 21), (2, 2))


def test_the_features_a_classifier_sees_are_not_a_squeeze_excitations():
    s = summarize(netdsl.compile(SE))
    assert s.feature_rf == (21, 21)  # the input of the last gap, not of the first SE's (3)


def test_efficientnet_b0_fields_stay_within_a_few_input_widths():
    s = summarize(netdsl.compile("efficientnet_b0"))
    last = next(x for x in s.layers if x.name == "features.8.2")
    assert last.jump == (32, 32) and last.rf[0] < 5 * 224
    assert s.feature_rf == last.rf


def test_the_central_window_clips_to_the_input_and_skips_what_strides_drop():
    # 1x10x10, conv 3x3/3 unpadded: 3 positions read rows 0-8 (row 9 never); a padded 3x3
    # after it: the central position (1) reads positions 0-2, rows 0-8, not row 9
    graph = netdsl.compile("network t:\n    input 1x10x10\n"
                           "    conv(1, 3x3, stride=3) -> conv(1, 3x3, pad=1)\n")
    assert input_window(graph) == ((0, 8), (0, 8))
    assert receptive_fields(graph)[-1][0] == (9, 9)


def test_a_kernel_whose_taps_miss_a_one_wide_map_reads_nothing():
    # conv 2x1, dilation 2, pad 1 on a 1-high map reads rows -1 and 1: padding only, so its
    # value is the bias's (torch's gradient is 0), unlike a 1-wide map broadcast into a merge
    graph = netdsl.compile("network t:\n    input 3x10x8\n    gap -> conv(3, 2x1, stride=2, pad=1,"
                           " dilation=2)\n")
    assert input_window(graph)[0] == (1, 0)


def test_positions_between_the_taps_of_a_dilated_read_do_not_count():
    # rows: conv 1x1/2, pad 1, dilation 2: map row q reads input row 2q - 1 (row 0: padding);
    # then 2x1/2, dilation 2: the central output reads map rows 0 and 2, so input row 3 only,
    # not rows 1..3 (map row 1, between the taps, is not read)
    graph = netdsl.compile("network t:\n    input 1x9x7\n"
                           "    conv(1, 1x1, stride=2, pad=1, dilation=2)"
                           " -> conv(1, 2x1, stride=2, dilation=2)\n")
    assert input_window(graph)[0] == (3, 3)
