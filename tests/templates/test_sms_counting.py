"""An SMS is counted as operators bill it: GSM-7 septets or UCS-2 units, in segments."""

import pytest

from templates_app.sms import (
    GSM7_BASIC_TABLE,
    GSM7_EXTENSION_TABLE,
    SmsStats,
    sms_stats,
)

EMOJI = "\N{GRINNING FACE}"  # outside the BMP: a surrogate pair in UTF-16
EXTENSION_CHARACTERS = "^{}\\[~]|€\f"


def test_the_empty_message_has_no_segment():
    assert sms_stats("") == SmsStats(
        characters=0, encoding="GSM-7", units=0, segments=0, per_segment=160, remaining=160
    )


def test_160_gsm_characters_are_one_segment():
    stats = sms_stats("a" * 160)
    assert (stats.encoding, stats.units, stats.segments) == ("GSM-7", 160, 1)
    assert (stats.per_segment, stats.remaining) == (160, 0)


def test_161_gsm_characters_are_two_segments():
    stats = sms_stats("a" * 161)
    assert stats.segments == 2
    assert (stats.per_segment, stats.remaining) == (153, 153 * 2 - 161)


def test_306_gsm_characters_are_two_segments():
    stats = sms_stats("a" * 306)
    assert (stats.segments, stats.remaining) == (2, 0)


def test_307_gsm_characters_are_three_segments():
    stats = sms_stats("a" * 307)
    assert (stats.segments, stats.remaining) == (3, 152)


def test_a_euro_sign_counts_as_two_septets():
    stats = sms_stats("€")
    assert (stats.characters, stats.encoding, stats.units) == (1, "GSM-7", 2)


@pytest.mark.parametrize("character", EXTENSION_CHARACTERS)
def test_every_extension_character_counts_as_two_septets(character):
    stats = sms_stats(character)
    assert (stats.encoding, stats.units) == ("GSM-7", 2)


def test_80_euro_signs_fill_one_segment_and_81_need_two():
    assert sms_stats("€" * 80).segments == 1
    stats = sms_stats("€" * 81)
    # 76 euro signs (152 septets) fit in a 153-septet segment, 5 go to the next.
    assert (stats.units, stats.segments, stats.remaining) == (162, 2, 153 - 10)


def test_an_extension_character_is_not_split_across_segments():
    # 306 septets divide into exactly two segments, but the euro sign would
    # straddle the boundary after 152 septets: it opens the second segment,
    # which then overflows into a third.
    text = "a" * 152 + "€" + "a" * 152
    stats = sms_stats(text)
    assert (stats.encoding, stats.units) == ("GSM-7", 306)
    assert (stats.segments, stats.per_segment, stats.remaining) == (3, 153, 152)


def test_an_extension_character_that_fits_stays_in_its_segment():
    text = "a" * 151 + "€" + "a" * 153
    stats = sms_stats(text)
    assert (stats.units, stats.segments, stats.remaining) == (306, 2, 0)


def test_one_emoji_switches_the_message_to_ucs2():
    stats = sms_stats("Terima kasih " + EMOJI)
    assert stats.encoding == "UCS-2"
    assert (stats.characters, stats.units) == (14, 15)


def test_an_emoji_counts_as_two_utf16_units():
    stats = sms_stats(EMOJI)
    assert (stats.characters, stats.units, stats.segments) == (1, 2, 1)


def test_70_ucs2_units_are_one_segment_and_71_are_two():
    seventy = sms_stats("Ś" * 70)
    assert (seventy.encoding, seventy.units, seventy.segments) == ("UCS-2", 70, 1)
    assert (seventy.per_segment, seventy.remaining) == (70, 0)

    seventy_one = sms_stats("Ś" * 71)
    assert (seventy_one.units, seventy_one.segments) == (71, 2)
    assert (seventy_one.per_segment, seventy_one.remaining) == (67, 67 * 2 - 71)


def test_134_ucs2_units_are_two_segments_and_135_are_three():
    assert sms_stats("Ś" * 134).segments == 2
    assert sms_stats("Ś" * 135).segments == 3


def test_an_emoji_is_not_split_across_segments():
    # 134 units divide into exactly two segments, but the emoji would straddle
    # the boundary after 66 units: it opens the second segment, which overflows.
    text = "a" * 66 + EMOJI + "a" * 66
    stats = sms_stats(text)
    assert (stats.encoding, stats.characters, stats.units) == ("UCS-2", 133, 134)
    assert (stats.segments, stats.per_segment, stats.remaining) == (3, 67, 66)


def test_indonesian_text_with_rupiah_amounts_stays_gsm7():
    text = "Yth. Bpk. Budi, tagihan Rp 1.230.000 jatuh tempo 9 September 2015."
    assert sms_stats(text) == SmsStats(
        characters=66, encoding="GSM-7", units=66, segments=1, per_segment=160, remaining=94
    )


def test_an_indonesian_name_with_a_diacritic_outside_gsm_switches_to_ucs2():
    stats = sms_stats("Yth. Bpk. Śantoso")
    assert (stats.encoding, stats.units, stats.remaining) == ("UCS-2", 17, 70 - 17)


def test_a_curly_apostrophe_pasted_from_a_word_processor_switches_to_ucs2():
    assert sms_stats("Jum\N{RIGHT SINGLE QUOTATION MARK}at").encoding == "UCS-2"
    assert sms_stats("Jum'at").encoding == "GSM-7"


def test_line_breaks_are_one_septet_each():
    stats = sms_stats("Yth. Nasabah,\r\nSaldo Anda Rp 500.000\n")
    assert (stats.encoding, stats.units) == ("GSM-7", stats.characters)


def test_the_escape_code_is_not_text_and_switches_to_ucs2():
    assert sms_stats("\x1b").encoding == "UCS-2"


def test_the_basic_table_has_128_positions_in_code_order():
    assert len(GSM7_BASIC_TABLE) == 128
    assert GSM7_BASIC_TABLE[0x00] == "@"
    assert GSM7_BASIC_TABLE[0x1B] == "\x1b"
    assert GSM7_BASIC_TABLE[0x24] == "¤"
    assert GSM7_BASIC_TABLE[0x40] == "¡"
    assert GSM7_BASIC_TABLE[0x5F] == "§"
    assert GSM7_BASIC_TABLE[0x60] == "¿"
    assert GSM7_BASIC_TABLE[0x7F] == "à"


def test_the_extension_table_holds_the_ten_standard_characters():
    assert "".join(sorted(GSM7_EXTENSION_TABLE.values())) == "".join(sorted(EXTENSION_CHARACTERS))
    assert GSM7_EXTENSION_TABLE[0x65] == "€"


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments", "per_segment", "remaining"),
    [
        ("a", "GSM-7", 1, 1, 160, 159),
        ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ", "GSM-7", 29, 1, 160, 131),
        ("¡¿ÄÖÑÜ§äöñüà¤", "GSM-7", 13, 1, 160, 147),
        ("{" * 80, "GSM-7", 160, 1, 160, 0),
        ("a" * 159 + "€", "GSM-7", 161, 2, 153, 145),
        ("a" * 459, "GSM-7", 459, 3, 153, 0),
        ("a" * 460, "GSM-7", 460, 4, 153, 152),
        ("ç", "UCS-2", 1, 1, 70, 69),
        ("á", "UCS-2", 1, 1, 70, 69),
        ("`", "UCS-2", 1, 1, 70, 69),
        (EMOJI * 35, "UCS-2", 70, 1, 70, 0),
        (EMOJI * 36, "UCS-2", 72, 2, 67, 61),
        ("€" + EMOJI, "UCS-2", 3, 1, 70, 67),
        ("Ś" * 201, "UCS-2", 201, 3, 67, 0),
        ("Ś" * 202, "UCS-2", 202, 4, 67, 66),
    ],
)
def test_known_messages(text, encoding, units, segments, per_segment, remaining):
    assert sms_stats(text) == SmsStats(
        characters=len(text),
        encoding=encoding,
        units=units,
        segments=segments,
        per_segment=per_segment,
        remaining=remaining,
    )
