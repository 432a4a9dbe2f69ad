"""Vietnamese text in legacy 8-bit encodings: TCVN3 and VNI-Windows codecs, Windows-1258, detection.

Why this module exists
----------------------
Shapefiles (DBF) and MapInfo tables from Vietnamese agencies were mostly made before Unicode fonts were
common. Their text is stored in whatever 8-bit encoding the typist's *font* used:

* **TCVN3** ("ABC", the VN3 subset of TCVN 5712:1993, fonts named ``.VnTime``, ``.VnArial`` ...): one
  byte per letter. Lowercase letters with tone marks and the seven uppercase base letters
  Ă Â Ê Ô Ơ Ư Đ have codes; uppercase letters *with tones* do not. Capitals were typed with the
  ``...H`` fonts (``.VnTimeH``), which draw the lowercase codes as capitals, so the bytes decode to
  lowercase letters: that is all the bytes say.
* **VNI-Windows** (fonts ``VNI-Times``, ``VNI-Helve`` ...): a vowel with diacritics is an ASCII base
  letter followed by one mark byte (``a`` + ``ù`` is "á", ``a`` + ``á`` is "ấ"); đ Đ ơ Ơ ư Ư and the
  toned i/I and ỵ/Ỵ are single bytes. Capitals take different mark bytes from lowercase letters.
* **Windows-1258** (``cp1258``), which Python knows, but which stores most tone marks as separate
  combining characters: its decoded text must be NFC-normalised before it is compared or indexed.

No maintained Python library decodes TCVN3 or VNI (Python's ``encodings`` has neither, and GDAL
has no driver option for them), so the two codecs below are written by hand from the published
TCVN 5712:1993 (VN3) and VNI-Windows code charts. ``tests/test_vietnamese.py`` checks every letter
against hand-written byte values and, when the ``iconv`` program is present, the TCVN3 table against
glibc's ``TCVN5712-1`` converter (whose VN1 table contains VN3 for every letter TCVN3 defines).

Every function that returns text returns it in Unicode NFC, the form the rest of ``webmap`` stores
and searches.

Examples
--------
>>> decode_tcvn3(b"C\\xea \\xa7\\xe1")
'Cờ Đỏ'
>>> decode_vni(b"Ca\\xf9i Ra\\xeang")
'Cái Răng'
>>> encode_vni("Thốt Nốt")
b'Tho\\xe1t No\\xe1t'
"""

from __future__ import annotations

import codecs
import collections
import functools
import re
import unicodedata

from webmap.errors import EncodingError

__all__ = [
    "LEGACY_ENCODINGS",
    "decode_bytes",
    "decode_tcvn3",
    "decode_vni",
    "detect_encoding",
    "encode_tcvn3",
    "encode_vni",
    "is_vietnamese_syllable",
    "normalize_text",
    "register_codecs",
]

LEGACY_ENCODINGS = ("tcvn3", "vni")

# Tone marks in the order used by the rows below: level (none), huyền, sắc, hỏi, ngã, nặng.
_TONES = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")
_TONE_NAMES = {"\u0300": "huyen", "\u0301": "sac", "\u0309": "hoi", "\u0303": "nga", "\u0323": "nang"}

# The twelve Vietnamese vowels (lowercase, without tone).
_VOWELS = ("a", "ă", "â", "e", "ê", "i", "o", "ô", "ơ", "u", "ư", "y")


def normalize_text(s: str) -> str:
    """Return ``s`` in Unicode NFC (precomposed letters), the form ``webmap`` stores and compares.

    Windows-1258 and some keyboards produce decomposed text (a base letter then a combining tone
    mark); two strings that look the same only compare equal once both are NFC.

    >>> normalize_text("a\\u0302\\u0301") == "\\u1ea5"
    True
    """
    return unicodedata.normalize("NFC", s)


def _letter(vowel: str, tone: str) -> str:
    """The precomposed letter for a (lowercase or uppercase) vowel and a tone mark."""
    composed = unicodedata.normalize("NFC", vowel + tone)
    if len(composed) != 1:  # pragma: no cover - guards the tables below
        raise AssertionError(f"no precomposed letter for {vowel!r} + {tone!r}")
    return composed


# -- TCVN3 (TCVN 5712:1993, VN3) ---------------------------------------------------------------------
# From the published VN3 chart. Each row: the byte for the letter without tone (ASCII for a e i o u y),
# then huyền, sắc, hỏi, ngã, nặng. Within a row the codes run huyền < hỏi < ngã < sắc < nặng.
_TCVN3_ROWS = {
    "a": (0x61, 0xB5, 0xB8, 0xB6, 0xB7, 0xB9),
    "ă": (0xA8, 0xBB, 0xBE, 0xBC, 0xBD, 0xC6),
    "â": (0xA9, 0xC7, 0xCA, 0xC8, 0xC9, 0xCB),
    "e": (0x65, 0xCC, 0xD0, 0xCE, 0xCF, 0xD1),
    "ê": (0xAA, 0xD2, 0xD5, 0xD3, 0xD4, 0xD6),
    "i": (0x69, 0xD7, 0xDD, 0xD8, 0xDC, 0xDE),
    "o": (0x6F, 0xDF, 0xE3, 0xE1, 0xE2, 0xE4),
    "ô": (0xAB, 0xE5, 0xE8, 0xE6, 0xE7, 0xE9),
    "ơ": (0xAC, 0xEA, 0xED, 0xEB, 0xEC, 0xEE),
    "u": (0x75, 0xEF, 0xF3, 0xF1, 0xF2, 0xF4),
    "ư": (0xAD, 0xF5, 0xF8, 0xF6, 0xF7, 0xF9),
    "y": (0x79, 0xFA, 0xFD, 0xFB, 0xFC, 0xFE),
}
# The other letters VN3 defines: đ and the seven uppercase base letters. 0xA0 is the no-break space.
_TCVN3_OTHERS = {
    0xA0: "\u00a0",
    0xA1: "Ă", 0xA2: "Â", 0xA3: "Ê", 0xA4: "Ô", 0xA5: "Ơ", 0xA6: "Ư", 0xA7: "Đ",
    0xAE: "đ",
}


def _build_tcvn3_table() -> str:
    # 256-character decoding table for codecs.charmap_decode; U+FFFE marks a byte VN3 does not define.
    # Bytes 0x80-0x9F and the gaps of 0xA1-0xFF hold *capitals with tones* in the full TCVN 5712
    # (VN1), which fonts never used: they are refused rather than guessed.
    table = [chr(b) for b in range(0x80)] + ["\ufffe"] * 0x80
    for vowel, codes in _TCVN3_ROWS.items():
        for tone, code in zip(_TONES, codes):
            if code >= 0x80:
                table[code] = _letter(vowel, tone)
    for code, char in _TCVN3_OTHERS.items():
        table[code] = char
    return "".join(table)


_TCVN3_DECODING = _build_tcvn3_table()
_TCVN3_ENCODING = codecs.charmap_build(_TCVN3_DECODING)


def _tcvn3_decode(data, errors: str = "strict") -> tuple[str, int]:
    try:
        text, consumed = codecs.charmap_decode(bytes(data), errors, _TCVN3_DECODING)
    except UnicodeDecodeError as exc:
        if exc.encoding != "charmap":
            raise
        raise UnicodeDecodeError("tcvn3", exc.object, exc.start, exc.end, "byte not defined in TCVN3 (VN3)") from None
    return normalize_text(text), consumed


def _tcvn3_encode(text: str, errors: str = "strict") -> tuple[bytes, int]:
    try:
        encoded, _ = codecs.charmap_encode(normalize_text(text), errors, _TCVN3_ENCODING)
    except UnicodeEncodeError as exc:
        if exc.encoding != "charmap":
            raise
        raise UnicodeEncodeError("tcvn3", exc.object, exc.start, exc.end, "character not in TCVN3 (VN3)") from None
    return encoded, len(text)


def decode_tcvn3(data: bytes) -> str:
    """Decode TCVN3 (ABC, VN3) bytes to an NFC string.

    Parameters
    ----------
    data : bytes
        Text in TCVN3. ASCII bytes stand for themselves.

    Returns
    -------
    str
        The text, NFC. Capitals typed with the ``.VnTimeH`` fonts come out lowercase (the bytes are
        the lowercase codes).

    Raises
    ------
    UnicodeDecodeError
        A byte VN3 does not define (0x80-0x9F, 0xAF-0xB4, 0xBA, 0xBF-0xC5, 0xCD, 0xD9-0xDB, 0xE0,
        0xF0, 0xFF). It is a ``ValueError``.

    Examples
    --------
    >>> decode_tcvn3(b"Ph\\xad\\xeang C\\xb8i Kh\\xd5")
    'Phường Cái Khế'
    """
    return _tcvn3_decode(data, "strict")[0]


def encode_tcvn3(text: str) -> bytes:
    """Encode ``text`` (any normalisation form) to TCVN3 bytes; used to build test fixtures.

    Raises
    ------
    UnicodeEncodeError
        For a character TCVN3 cannot hold, notably capitals with a tone mark ("Á", "Ệ"). It is a
        ``ValueError``; the position refers to the NFC form of ``text``.

    Examples
    --------
    >>> encode_tcvn3("Cờ Đỏ")
    b'C\\xea \\xa7\\xe1'
    """
    return _tcvn3_encode(text, "strict")[0]


# -- VNI-Windows --------------------------------------------------------------------------------------
# From the published VNI-Windows chart, written with the Windows-1252 glyph each byte shows in a
# non-VNI font (the way the text looks when decoded wrongly, e.g. "Phöôøng" for "Phường").
# Columns: no tone, huyền, sắc, hỏi, ngã, nặng.
# Lowercase marks: huyền ø F8, sắc ù F9, hỏi û FB, ngã õ F5, nặng ï EF, circumflex â E2, breve ê EA;
# circumflex with a tone: à E0 á E1 å E5 ã E3 ä E4; breve with a tone: è E8 é E9 ú FA ü FC ë EB.
# Uppercase marks: Ø D8, Ù D9, Û DB, Õ D5, Ï CF, Â C2, Ê CA; À C0 Á C1 Å C5 Ã C3 Ä C4; È C8 É C9 Ú DA Ü DC Ë CB.
# Single bytes: ơ ô F4, ư ö F6, đ ñ F1, ì ì EC, í í ED, ỉ æ E6, ĩ ó F3, ị ò F2, ỵ î EE (and their capitals).
_VNI_ROWS = {
    "a": ("a", "aø", "aù", "aû", "aõ", "aï"),
    "ă": ("aê", "aè", "aé", "aú", "aü", "aë"),
    "â": ("aâ", "aà", "aá", "aå", "aã", "aä"),
    "e": ("e", "eø", "eù", "eû", "eõ", "eï"),
    "ê": ("eâ", "eà", "eá", "eå", "eã", "eä"),
    "i": ("i", "ì", "í", "æ", "ó", "ò"),
    "o": ("o", "oø", "où", "oû", "oõ", "oï"),
    "ô": ("oâ", "oà", "oá", "oå", "oã", "oä"),
    "ơ": ("ô", "ôø", "ôù", "ôû", "ôõ", "ôï"),
    "u": ("u", "uø", "uù", "uû", "uõ", "uï"),
    "ư": ("ö", "öø", "öù", "öû", "öõ", "öï"),
    "y": ("y", "yø", "yù", "yû", "yõ", "î"),
    "A": ("A", "AØ", "AÙ", "AÛ", "AÕ", "AÏ"),
    "Ă": ("AÊ", "AÈ", "AÉ", "AÚ", "AÜ", "AË"),
    "Â": ("AÂ", "AÀ", "AÁ", "AÅ", "AÃ", "AÄ"),
    "E": ("E", "EØ", "EÙ", "EÛ", "EÕ", "EÏ"),
    "Ê": ("EÂ", "EÀ", "EÁ", "EÅ", "EÃ", "EÄ"),
    "I": ("I", "Ì", "Í", "Æ", "Ó", "Ò"),
    "O": ("O", "OØ", "OÙ", "OÛ", "OÕ", "OÏ"),
    "Ô": ("OÂ", "OÀ", "OÁ", "OÅ", "OÃ", "OÄ"),
    "Ơ": ("Ô", "ÔØ", "ÔÙ", "ÔÛ", "ÔÕ", "ÔÏ"),
    "U": ("U", "UØ", "UÙ", "UÛ", "UÕ", "UÏ"),
    "Ư": ("Ö", "ÖØ", "ÖÙ", "ÖÛ", "ÖÕ", "ÖÏ"),
    "Y": ("Y", "YØ", "YÙ", "YÛ", "YÕ", "Î"),
}
_VNI_OTHERS = {"đ": "ñ", "Đ": "Ñ"}


def _build_vni_tables():
    encode = {}  # character -> bytes
    for vowel, forms in _VNI_ROWS.items():
        for tone, glyphs in zip(_TONES, forms):
            char = _letter(vowel, tone)
            if not char.isascii():
                encode[char] = glyphs.encode("cp1252")
    for char, glyphs in _VNI_OTHERS.items():
        encode[char] = glyphs.encode("cp1252")
    decode = {seq: char for char, seq in encode.items()}
    # Lenient reading: a mark byte of the other case after a base letter (typed with Caps Lock, or
    # by a converter that ignored case) is read as that mark; the letter keeps the base's case.
    for lower, upper in zip(list(_VNI_ROWS)[:12], list(_VNI_ROWS)[12:]):
        for low_glyphs, up_glyphs in zip(_VNI_ROWS[lower], _VNI_ROWS[upper]):
            if len(low_glyphs) == 2:
                low, up = low_glyphs.encode("cp1252"), up_glyphs.encode("cp1252")
                decode.setdefault(low[:1] + up[1:], decode[low])
                decode.setdefault(up[:1] + low[1:], decode[up])
    # VNI fonts redraw only 0xC0-0xFF; 0x80-0xBF keep their Windows-1252 punctuation and symbols.
    for b in range(0x80, 0xC0):
        try:
            char = bytes([b]).decode("cp1252")
        except UnicodeDecodeError:
            continue
        decode[bytes([b])] = char
        encode.setdefault(char, bytes([b]))
    return encode, decode


_VNI_ENCODE, _VNI_DECODE = _build_vni_tables()
_VNI_BASES = frozenset(seq[0] for seq in _VNI_DECODE if len(seq) == 2)
_VNI_MARKS = frozenset(seq[1] for seq in _VNI_DECODE if len(seq) == 2)


def _vni_pattern() -> re.Pattern:
    # One branch per base byte with the class of mark bytes valid after it, then any other high byte.
    branches = []
    for base in sorted(_VNI_BASES):
        marks = sorted(seq[1] for seq in _VNI_DECODE if len(seq) == 2 and seq[0] == base)
        branches.append(re.escape(bytes([base])) + b"[" + b"".join(re.escape(bytes([m])) for m in marks) + b"]")
    return re.compile(b"(?:" + b"|".join(branches) + b")|[\x80-\xff]")


_VNI_RE = _vni_pattern()
# Fast path: the same pattern over the bytes read as Latin-1 characters, replaced in one re.sub call.
_VNI_RE_TEXT = re.compile(_VNI_RE.pattern.decode("latin-1"))
_VNI_DECODE_TEXT = {seq.decode("latin-1"): char for seq, char in _VNI_DECODE.items()}
_VNI_TRANSLATE = {ord(char): seq.decode("latin-1") for char, seq in _VNI_ENCODE.items()}


def _vni_decode(data, errors: str = "strict", final: bool = True) -> tuple[str, int]:
    """Decode VNI bytes; with ``final=False`` a trailing base letter waits for a possible mark byte."""
    data = bytes(data)
    end = len(data)
    if not final and end and data[-1] in _VNI_BASES:
        end -= 1
    if data.isascii():
        return data[:end].decode("ascii"), end
    try:
        text = _VNI_RE_TEXT.sub(lambda m: _VNI_DECODE_TEXT[m.group()], data[:end].decode("latin-1"))
        return normalize_text(text), end
    except KeyError:
        pass  # an invalid byte: decode again below, byte by byte, through the error handler
    out = []
    pos = 0
    handler = None
    while pos < end:
        match = _VNI_RE.search(data, pos, end)
        if match is None:
            out.append(data[pos:end].decode("ascii"))
            break
        start = match.start()
        if start > pos:
            out.append(data[pos:start].decode("ascii"))
        char = _VNI_DECODE.get(match.group())
        if char is not None:
            out.append(char)
            pos = match.end()
            continue
        byte = data[start]
        reason = "mark byte without a vowel to carry it" if byte in _VNI_MARKS else "byte not defined in VNI-Windows"
        exc = UnicodeDecodeError("vni", data, start, start + 1, reason)
        if handler is None:
            handler = codecs.lookup_error(errors)
        replacement, pos = handler(exc)
        if pos < 0:
            pos += len(data)
        out.append(replacement)
    return normalize_text("".join(out)), max(pos, end)  # pos passes end only if an error handler skips on


def _vni_encode(text: str, errors: str = "strict") -> tuple[bytes, int]:
    nfc = normalize_text(text)
    if all(c < "\x80" or c in _VNI_ENCODE for c in set(nfc)):
        return nfc.translate(_VNI_TRANSLATE).encode("latin-1"), len(text)
    out = []
    pos = 0
    handler = None
    while pos < len(nfc):
        char = nfc[pos]
        if char < "\x80":
            out.append(char.encode("ascii"))
            pos += 1
            continue
        seq = _VNI_ENCODE.get(char)
        if seq is not None:
            out.append(seq)
            pos += 1
            continue
        stop = pos + 1
        while stop < len(nfc) and nfc[stop] >= "\x80" and nfc[stop] not in _VNI_ENCODE:
            stop += 1
        exc = UnicodeEncodeError("vni", nfc, pos, stop, "character not in VNI-Windows")
        if handler is None:
            handler = codecs.lookup_error(errors)
        replacement, pos = handler(exc)
        if pos < 0:
            pos += len(nfc)
        if isinstance(replacement, str):
            replacement = _vni_encode(replacement, "strict")[0]
        out.append(bytes(replacement))
    return b"".join(out), len(text)


def decode_vni(data: bytes) -> str:
    """Decode VNI-Windows bytes to an NFC string.

    Parameters
    ----------
    data : bytes
        Text in VNI-Windows: ASCII, base letters followed by mark bytes, single-byte letters, and
        Windows-1252 punctuation in 0x80-0xBF (VNI fonts only redraw 0xC0-0xFF).

    Returns
    -------
    str
        The text, NFC. A mark byte of the other case after a base letter is accepted; the letter
        keeps the case of its base.

    Raises
    ------
    UnicodeDecodeError
        A mark byte with no vowel that can carry it, or a byte VNI does not define (Ç Ð × Ý Þ ß ç ð
        ÷ ý þ ÿ positions, and the five bytes Windows-1252 leaves undefined). It is a ``ValueError``.

    Examples
    --------
    >>> decode_vni(b"Ph\\xf6\\xf4\\xf8ng")
    'Phường'
    """
    return _vni_decode(data, "strict")[0]


def encode_vni(text: str) -> bytes:
    """Encode ``text`` (any normalisation form) to VNI-Windows bytes; used to build test fixtures.

    Every Vietnamese letter, lowercase and uppercase, has a VNI form.

    Raises
    ------
    UnicodeEncodeError
        For a character VNI cannot hold (a ``ValueError``; the position refers to the NFC form).

    Examples
    --------
    >>> encode_vni("Cờ Đỏ")
    b'C\\xf4\\xf8 \\xd1o\\xfb'
    """
    return _vni_encode(text, "strict")[0]


# -- codec registration --------------------------------------------------------------------------------
class _TCVN3IncrementalEncoder(codecs.IncrementalEncoder):
    def encode(self, input, final=False):
        return _tcvn3_encode(input, self.errors)[0]


class _TCVN3IncrementalDecoder(codecs.IncrementalDecoder):
    def decode(self, input, final=False):
        return _tcvn3_decode(input, self.errors)[0]


class _VNIIncrementalEncoder(codecs.IncrementalEncoder):
    def encode(self, input, final=False):
        return _vni_encode(input, self.errors)[0]


class _VNIIncrementalDecoder(codecs.BufferedIncrementalDecoder):
    # A base letter at the end of a chunk is held back until the next chunk shows whether a mark follows.
    def _buffer_decode(self, input, errors, final):
        return _vni_decode(input, errors, final)


class _TCVN3StreamWriter(codecs.StreamWriter):
    encode = staticmethod(_tcvn3_encode)


class _TCVN3StreamReader(codecs.StreamReader):
    decode = staticmethod(_tcvn3_decode)


class _VNIStreamWriter(codecs.StreamWriter):
    encode = staticmethod(_vni_encode)


class _VNIStreamReader(codecs.StreamReader):
    decode = staticmethod(_vni_decode)


_CODEC_INFOS = {
    "tcvn3": codecs.CodecInfo(
        name="tcvn3", encode=_tcvn3_encode, decode=_tcvn3_decode,
        incrementalencoder=_TCVN3IncrementalEncoder, incrementaldecoder=_TCVN3IncrementalDecoder,
        streamreader=_TCVN3StreamReader, streamwriter=_TCVN3StreamWriter,
    ),
    "vni": codecs.CodecInfo(
        name="vni", encode=_vni_encode, decode=_vni_decode,
        incrementalencoder=_VNIIncrementalEncoder, incrementaldecoder=_VNIIncrementalDecoder,
        streamreader=_VNIStreamReader, streamwriter=_VNIStreamWriter,
    ),
}
_ALIASES = {
    "tcvn3": "tcvn3", "tcvn_3": "tcvn3", "tcvn3_abc": "tcvn3", "abc_tcvn3": "tcvn3",
    "vni": "vni", "vni_windows": "vni", "vniwindows": "vni", "vni_win": "vni",
}
_registered = False


def _canonical(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def _search(name: str):
    key = _ALIASES.get(_canonical(name))
    return _CODEC_INFOS[key] if key else None


def register_codecs() -> None:
    """Register "tcvn3" and "vni" with :mod:`codecs` (idempotent).

    Afterwards ``data.decode("tcvn3")``, ``text.encode("vni")``, ``open(path, encoding="vni")`` and
    ``codecs.lookup("VNI-Windows")`` work. Decoding through the codec returns NFC text too.

    >>> register_codecs()
    >>> b"S\\xf9 c\\xe8".decode("tcvn3")
    'Sự cố'
    """
    global _registered
    if not _registered:
        codecs.register(_search)
        _registered = True


# -- decoding with a named encoding --------------------------------------------------------------------
def _resolve(encoding: str) -> str:
    key = _canonical(encoding)
    if key in _ALIASES:
        return _ALIASES[key]
    if key in ("utf8", "utf_8", "u8", "utf"):
        return "utf-8"
    if key in ("cp1258", "windows_1258", "1258", "ansi_1258"):
        return "cp1258"
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise EncodingError(
            f"unknown encoding {encoding!r}: use utf-8, cp1258, tcvn3 or vni (or any Python codec name)"
        ) from None


def decode_bytes(data: bytes, encoding: str) -> str:
    """Decode ``data`` with ``encoding`` and return NFC text.

    Parameters
    ----------
    data : bytes
        The raw text.
    encoding : str
        "utf-8", "cp1258", "tcvn3", "vni" (with the usual spellings: "UTF8", "windows-1258",
        "VNI-Windows" ...) or any Python codec name.

    Returns
    -------
    str
        The decoded text in NFC (Windows-1258 and decomposed UTF-8 come out precomposed).

    Raises
    ------
    webmap.errors.EncodingError
        When the bytes are not valid in that encoding, or the encoding is unknown; the one-line
        message names the encoding and the offending byte.

    Examples
    --------
    >>> decode_bytes(b"Vi\\xdenh Tha\\xf2nh", "cp1258")
    'Vĩnh Thạnh'
    """
    name = _resolve(encoding)
    try:
        if name == "tcvn3":
            return _tcvn3_decode(data, "strict")[0]
        if name == "vni":
            return _vni_decode(data, "strict")[0]
        return normalize_text(bytes(data).decode(name))
    except UnicodeDecodeError as exc:
        label = {"tcvn3": "TCVN3", "vni": "VNI-Windows", "utf-8": "UTF-8", "cp1258": "Windows-1258 (cp1258)"}
        shown = label.get(name, name)
        byte = exc.object[exc.start] if exc.start < len(exc.object) else None
        where = f"byte 0x{byte:02X} at offset {exc.start}" if byte is not None else f"offset {exc.start}"
        reason = " ".join(str(exc.reason).split())
        raise EncodingError(
            f"text is not valid {shown}: {where} ({reason}); "
            f"give the right encoding (utf-8, cp1258, tcvn3 or vni)"
        ) from None


# -- detection ---------------------------------------------------------------------------------------------
# How "Vietnamese" a decoded text looks. Every word holding a non-ASCII letter is parsed as a syllable:
# initial consonant + vowel cluster + final consonant, one tone mark on the right vowel, and stop
# finals (c ch p t) only with sắc or nặng. Wrong decodings produce letters outside the alphabet,
# control characters, symbols, stray combining marks and clusters like "aồ" or "ửụứ".
_INITIALS = ("ngh", "ng", "nh", "ch", "gh", "gi", "kh", "ph", "th", "tr", "qu",
             "b", "c", "d", "đ", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "x", "")
_FINALS = ("ng", "nh", "ch", "c", "m", "n", "p", "t", "")
_STOP_FINALS = ("c", "ch", "p", "t")
# Vowel clusters -> indexes of the vowel that may carry the tone (both old and new style accepted).
_CLUSTERS = {
    **{v: {0} for v in _VOWELS},
    **{c: {0} for c in ("ai", "ao", "au", "ay", "âu", "ây", "eo", "êu", "ia", "iu", "oi", "ôi", "ơi",
                        "ui", "ưi", "ưu", "ưa", "ua")},
    **{c: {1} for c in ("iê", "yê", "uô", "ươ", "uâ", "uê", "uơ", "oă", "oai", "oay", "oao", "oeo",
                        "uây", "uôi", "ươi", "ươu", "iêu", "yêu", "uya", "uyu")},
    **{c: {0, 1} for c in ("oa", "oe", "uy")},
    "oo": {1},
    "uyê": {2},
}
_OPEN_ONLY = {"ai", "ao", "au", "ay", "âu", "ây", "eo", "êu", "ia", "iu", "oi", "ôi", "ơi", "ui", "ưi",
              "ưu", "ưa", "ua", "uơ", "oai", "oay", "oao", "oeo", "uây", "uôi", "ươi", "ươu", "iêu",
              "yêu", "uya", "uyu"}
_NEEDS_FINAL = {"ă", "â", "oă", "uâ", "iê", "yê", "uô", "ươ", "uyê", "oo"}
_OO_FORMS = {("ng", ""), ("ng", "\u0300"), ("c", "\u0301")}  # boong xoong goòng soóc moóc, nothing else
_PALATAL_OK = {"a", "ê", "i", "y", "oa", "uê", "uy"}  # clusters that take the finals ch / nh
# Frequent syllables (general text, addresses, administrative units, people's and place names, network
# assets): a bonus that breaks ties between two decodings that both parse, e.g. VNI "Tuû" read as
# TCVN3 "Tuỷ" against "Tủ", or TCVN3 "Kiều" read as Windows-1258 "Kỉu".
_COMMON = frozenset("""
    và của có các là được trong cho không người những một với đã này để năm khi đến ra về theo từ nhiều
    nhà hơn sẽ đó cũng như vào lại tại làm thì phải bị nước hai ông đi mà trên nhất sau số việc nói thể
    công đồng phát triển chính hội quốc gia trường động hoạt thành phố tỉnh huyện quận xã phường ấp khu
    vực đường cầu sông kênh rạch chợ bến bãi cảng trạm điện thoại viễn thông bưu cục mạng cáp quang dây
    cột tủ bể cống hố máy chủ phòng trung tâm dữ liệu thiết hệ thống toàn ninh bảo vệ sự cố mất đứt hư
    hỏng sửa chữa bình thường ngưng đang tuyến ngầm treo nổi kết nối đầu cuối tổ lô thửa đất ở văn hóa
    hoá giáo dục tế bệnh viện học ủy uỷ ban nhân dân quân đảng bộ cơ quan doanh nghiệp tập đoàn nhánh
    đại lý cửa hàng siêu thị ngân sở cũ mới lớn nhỏ trước giữa ngoài cạnh gần xa dài rộng cao thấp
    nguyễn trần lê phạm hoàng huỳnh phan vũ võ đặng bùi đỗ hồ ngô dương văn hữu đức minh hùng dũng
    tuấn hải hà thanh hương lan mai hồng ngọc phương thắng lợi hưng thịnh tài lộc phúc thọ an khánh
    long thạnh thới tân phú mỹ xuân đông tây nam bắc thuận hiệp nghĩa giang châu cần thơ hậu sóc trăng
    vĩnh kiều răng thủy thuỷ thốt nốt cờ đỏ môn điền lai cái khế tháng tám mậu thân ba bốn sáu bảy
    chín mười trăm nghìn ngàn triệu cấp độ mức loại tên địa chỉ ghi chú tình trạng ngày giờ phút
    điểm đài đoạn trục lưới sóng trụ sở kỹ thuật vận hành quản lý khai thác dịch vụ khách
    hàng thuê bao truyền dẫn nguồn ắc quy máy phát lửa cháy nổ ngập lụt bão gió mưa sét đất lở
    quốc lộ tỉnh lộ hẻm ngõ kiệt phụ chánh lập định thị trấn cồn cù lao vàm ngã tư ba rẽ
    hòa hoà hiếu trí tín lễ nhơn ái giai quới lương hạnh phước lạc phong thạch chùa góc mùa núi
    nói thủ phủ củ cụ lũ hũ mía chúng
""".split())
_SYMBOLS_OK = frozenset("\u00a0\u2013\u2014\u2018\u2019\u201c\u201d\u2026\u00b0\u00b7\u00ba\u20ab")
_VIET_LETTERS = frozenset(
    ch
    for vowel in _VOWELS
    for tone in _TONES
    for ch in (_letter(vowel, tone), _letter(vowel.upper(), tone))
) | frozenset("đĐ")
_WORD_RE = re.compile(r"[^\W\d_]+(?:[\u0300-\u036f][^\W\d_]*)*|[\u0300-\u036f]+\w*")


def _split_tone(word: str):
    """(toneless NFC word, tone mark or "", index of the letter carrying it) or None if malformed."""
    tone, index, bases = "", None, []
    for ch in unicodedata.normalize("NFD", word):
        if ch in _TONE_NAMES:
            if tone or not bases:
                return None
            tone, index = ch, len(bases) - 1
        elif unicodedata.combining(ch):
            if not bases:
                return None
            bases[-1] += ch
        else:
            bases.append(ch)
    letters = [unicodedata.normalize("NFC", b) for b in bases]
    if any(len(b) != 1 for b in letters):
        return None
    return "".join(letters), tone, index


def is_vietnamese_syllable(word: str) -> bool:
    """Whether ``word`` (any case) is a well-formed Vietnamese syllable.

    >>> is_vietnamese_syllable("Nguyễn"), is_vietnamese_syllable("Caồn"), is_vietnamese_syllable("hoà")
    (True, False, True)
    """
    parts = _split_tone(word.lower())
    if parts is None:
        return False
    bare, tone, tone_at = parts
    for initial in _INITIALS:
        if not bare.startswith(initial):
            continue
        rest = bare[len(initial):]
        for final in _FINALS:
            if final and not rest.endswith(final):
                continue
            cluster = rest[: len(rest) - len(final)]
            if cluster not in _CLUSTERS:
                continue
            if final and cluster in _OPEN_ONLY or not final and cluster in _NEEDS_FINAL:
                continue
            if final in ("ch", "nh") and cluster not in _PALATAL_OK:
                continue
            if final in _STOP_FINALS and tone not in ("\u0301", "\u0323"):
                continue
            if initial in ("k", "gh", "ngh") and cluster[0] not in "ieêy":
                continue
            if initial in ("c", "ng") and cluster[0] in "ieêy" or initial == "g" and cluster[0] in "eê":
                continue
            if initial == "qu" and cluster[0] == "u" or initial == "gi" and cluster[0] == "i":
                continue
            if tone and tone_at - len(initial) not in _CLUSTERS[cluster]:
                continue
            if cluster == "oo" and (final, tone) not in _OO_FORMS:
                continue
            return True
    return False


@functools.lru_cache(maxsize=4096)
def _char_penalty(ch: str) -> float:
    if ch < "\x80":
        return 4.0 if ch < " " and ch not in "\t\n\r" or ch == "\x7f" else 0.0
    if ch in _VIET_LETTERS:
        return 0.0
    if ch == "\ufffd" or unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cn"):
        return 4.0  # an undecodable byte or a control character
    if unicodedata.combining(ch):
        return 3.0  # a tone mark left over: it sat on no letter that can carry it
    if ch in _SYMBOLS_OK:
        return 0.5
    return 2.0  # a foreign letter (ö ø ñ ß ...) or a symbol (§ ¸ ¹ ...)


@functools.lru_cache(maxsize=16384)
def _word_score(word: str) -> float:
    if not is_vietnamese_syllable(word):
        return -2.0
    return 4.0 if word.lower() in _COMMON else 3.0


def _score(text: str) -> float:
    """How Vietnamese ``text`` looks: positive for well-formed syllables, negative for debris."""
    score = -sum(_char_penalty(ch) * n for ch, n in collections.Counter(text).items())
    words = collections.Counter(w for w in _WORD_RE.findall(text) if not w.isascii())
    return score + sum(_word_score(w) * n for w, n in words.items())


_CANDIDATES = ("tcvn3", "vni", "cp1258")  # ties go to the first: TCVN3 is the most common legacy text
_DETECT_BUDGET = 200_000  # bytes of non-ASCII samples scored


def _lenient_decode(data: bytes, encoding: str) -> str:
    if encoding == "tcvn3":
        return _tcvn3_decode(data, "replace")[0]
    if encoding == "vni":
        return _vni_decode(data, "replace")[0]
    return normalize_text(data.decode(encoding, "replace"))


def detect_encoding(samples: list[bytes]) -> str:
    """Guess the encoding of a file's text from raw samples of its field names and values.

    Parameters
    ----------
    samples : list of bytes
        Raw byte strings (names and values); ``None`` and empty entries are ignored.

    Returns
    -------
    str
        "utf-8" when every sample is ASCII or valid UTF-8 (legacy text is practically never valid
        UTF-8). Otherwise the one of "tcvn3", "vni", "cp1258" whose decoding looks most
        Vietnamese, all samples scored together: each word holding a non-ASCII letter scores +3 if
        it parses as a Vietnamese syllable (initial, vowel cluster, final consonant, at most one
        tone, on the vowel that carries it, stop finals c/ch/p/t only with sắc or nặng), +1 more
        if it is a frequent syllable, and -2 if it does not parse; every undecodable byte or
        control character costs 4, a stray combining mark 3, a foreign letter (ö, ø, ñ ...) or an
        unlikely symbol (§, ¸, ¹ ...) 2, common typographic punctuation 0.5. Ties go to TCVN3,
        then VNI. The first 200 kB of non-ASCII samples are scored.

    Notes
    -----
    A few single words are truly ambiguous (VNI "cơ", bytes ``c\\xf4``, is TCVN3 "cụ"; precomposed
    Windows-1258 "chín" is the same bytes in VNI); a handful of values from a file settles it.

    Examples
    --------
    >>> detect_encoding([b"TEN_PHUONG", b"Ph\\xad\\xeang C\\xb8i Kh\\xd5"])
    'tcvn3'
    >>> detect_encoding([b"Ph\\xf6\\xf4\\xf8ng Ca\\xf9i Khe\\xe1"])
    'vni'
    >>> detect_encoding([b"Ph\\xfd\\xf5\\xccng Ca\\xeci Kh\\xea\\xec"])
    'cp1258'
    """
    wide = [bytes(s) for s in samples if s and not bytes(s).isascii()]
    if not wide:
        return "utf-8"
    try:
        for sample in wide:
            sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    chosen, budget = [], _DETECT_BUDGET
    for sample in wide:
        if budget <= 0:
            break
        chosen.append(sample[:budget])
        budget -= len(sample)
    joined = b"\n".join(chosen)
    scores = {encoding: _score(_lenient_decode(joined, encoding)) for encoding in _CANDIDATES}
    return max(_CANDIDATES, key=lambda e: (scores[e], -_CANDIDATES.index(e)))
