/* qomni — Qwen's byte-level BPE tokenizer.
 *
 * Encoding a piece of text (between added tokens):
 *   1. NFC normalisation;
 *   2. the Qwen2 pre-tokenizer split, matched by hand over code points (see next_pretoken);
 *   3. byte-level BPE of each pre-token's UTF-8 bytes, by merge rank.
 * vocab.json and merges.txt spell tokens in GPT-2's byte->unicode form ("Ġ" is the space
 * byte); we translate that to raw bytes once at load time and run BPE on token ids, so the
 * unicode form is needed only to read the files and for qomni_tokenizer_token_id.
 */
#include "tokenizer.h"
#include "error.h"

#include <json-glib/json-glib.h>
#include <string.h>

/* No real vocabulary comes near this; it bounds the arrays a hostile file can make us size. */
#define MAX_TOKEN_ID (1 << 21)
#define PAIR_EMPTY G_MAXUINT64
/* Pre-tokens are cached up to this many bytes, and the cache is dropped when it grows past
 * CACHE_MAX entries, so a long-running element cannot grow without bound. */
#define CACHE_KEY_MAX 256
#define CACHE_MAX 65536

enum {
  TOKEN_VALID = 1 << 0,
  TOKEN_ADDED = 1 << 1,
  TOKEN_SPECIAL = 1 << 2,
};

typedef struct {
  guint64 key; /* left id << 32 | right id, PAIR_EMPTY for a free slot */
  gint32 rank;
  gint32 merged;
} PairSlot;

typedef struct {
  const char *content; /* in tok->strings */
  gsize len;
  int id;
  gboolean special;
} AddedToken;

struct _QomniTokenizer {
  int n_tokens;
  guint32 *offsets; /* n_tokens + 1 offsets into bytes */
  guint8 *flags;    /* TOKEN_* per id */
  guint8 *bytes;

  GStringChunk *strings;
  GHashTable *vocab; /* byte->unicode form (in strings) -> id + 1 */
  int byte_ids[256];

  PairSlot *pairs;
  guint64 pair_mask;

  AddedToken *added; /* longest content first, so the first match is the longest */
  int n_added;
  gboolean added_first_byte[256];

  GMutex cache_lock;
  GHashTable *cache; /* pre-token bytes -> gint32[1 + n]: n, then the ids */
};

/* Qwen3-Omni's extra added tokens. Model folders of other Qwen releases lack them, and the
 * chat template needs the audio ones, so they are always added. */
static const struct {
  int id;
  const char *content;
} omni_extra_tokens[] = {
  { 151669, "<|audio_start|>" },
  { 151670, "<|audio_end|>" },
  { 151671, "<tts_pad>" },
  { 151672, "<tts_text_bos>" },
  { 151673, "<tts_text_eod>" },
  { 151674, "<tts_text_bos_single>" },
  { 151675, "<|audio_pad|>" },
};

/* ---- GPT-2's byte <-> unicode table ---- */

/* Printable Latin-1 bytes stand for themselves; the other 68 bytes (controls, space, DEL,
 * NBSP, soft hyphen) are moved in order to U+0100 upwards so that every token is printable. */
static void
byte_unicode_table (gunichar byte_to_char[256], int char_to_byte[324])
{
  int moved = 0;
  for (int i = 0; i < 324; i++)
    char_to_byte[i] = -1;
  for (int b = 0; b < 256; b++) {
    gboolean printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    byte_to_char[b] = printable ? (gunichar) b : (gunichar) (256 + moved++);
    char_to_byte[byte_to_char[b]] = b;
  }
}

/* ---- the merge table: (left id, right id) -> rank, merged id ---- */

static inline guint64
pair_key (int left, int right)
{
  return ((guint64) (guint32) left << 32) | (guint32) right;
}

static inline guint64
pair_hash (guint64 key)
{
  key ^= key >> 29;
  key *= G_GUINT64_CONSTANT (0x9e3779b97f4a7c15);
  return key ^ (key >> 32);
}

static const PairSlot *
pair_find (const QomniTokenizer *tok, int left, int right)
{
  guint64 key = pair_key (left, right);
  for (guint64 i = pair_hash (key) & tok->pair_mask;; i = (i + 1) & tok->pair_mask) {
    const PairSlot *s = &tok->pairs[i];
    if (s->key == key)
      return s;
    if (s->key == PAIR_EMPTY)
      return NULL;
  }
}

/* Keeps the first (lowest-rank) entry of a pair listed twice, as a rank search would. */
static void
pair_insert (QomniTokenizer *tok, int left, int right, int rank, int merged)
{
  guint64 key = pair_key (left, right);
  for (guint64 i = pair_hash (key) & tok->pair_mask;; i = (i + 1) & tok->pair_mask) {
    PairSlot *s = &tok->pairs[i];
    if (s->key == key)
      return;
    if (s->key == PAIR_EMPTY) {
      s->key = key;
      s->rank = rank;
      s->merged = merged;
      return;
    }
  }
}

/* ---- UTF-8 helpers (ours, because the GLib ones stop at NUL bytes, which are valid) ---- */

typedef enum {
  UTF8_COMPLETE,  /* a whole valid character of *n bytes */
  UTF8_TRUNCATED, /* the buffer ends after *n bytes of a valid prefix */
  UTF8_INVALID,   /* *n bytes (at least 1) form the maximal invalid subpart */
} Utf8Status;

static Utf8Status
utf8_sequence (const guint8 *p, gsize avail, gsize *n)
{
  guint8 b = p[0];
  gsize need;
  guint8 lo = 0x80, hi = 0xbf; /* the range of the second byte */
  if (b < 0x80) {
    *n = 1;
    return UTF8_COMPLETE;
  } else if (b >= 0xc2 && b <= 0xdf) {
    need = 2;
  } else if (b >= 0xe0 && b <= 0xef) {
    need = 3;
    if (b == 0xe0)
      lo = 0xa0; /* overlong */
    else if (b == 0xed)
      hi = 0x9f; /* surrogates */
  } else if (b >= 0xf0 && b <= 0xf4) {
    need = 4;
    if (b == 0xf0)
      lo = 0x90; /* overlong */
    else if (b == 0xf4)
      hi = 0x8f; /* past U+10FFFF */
  } else {
    *n = 1;
    return UTF8_INVALID;
  }
  for (gsize i = 1; i < need; i++) {
    if (i >= avail) {
      *n = i;
      return UTF8_TRUNCATED;
    }
    guint8 c = p[i];
    gboolean ok = i == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xbf);
    if (!ok) {
      *n = i;
      return UTF8_INVALID;
    }
  }
  *n = need;
  return UTF8_COMPLETE;
}

/* The code point of a complete valid sequence of len bytes. */
static gunichar
utf8_decode (const guint8 *p, gsize len)
{
  switch (len) {
    case 1:
      return p[0];
    case 2:
      return ((gunichar) (p[0] & 0x1f) << 6) | (p[1] & 0x3f);
    case 3:
      return ((gunichar) (p[0] & 0x0f) << 12) | ((gunichar) (p[1] & 0x3f) << 6) | (p[2] & 0x3f);
    default:
      return ((gunichar) (p[0] & 0x07) << 18) | ((gunichar) (p[1] & 0x3f) << 12)
             | ((gunichar) (p[2] & 0x3f) << 6) | (p[3] & 0x3f);
  }
}

/* Offset of the first byte that is not part of a complete valid character, or len. */
static gsize
utf8_valid_prefix (const guint8 *p, gsize len)
{
  gsize pos = 0;
  while (pos < len) {
    gsize n;
    if (utf8_sequence (p + pos, len - pos, &n) != UTF8_COMPLETE)
      break;
    pos += n;
  }
  return pos;
}

/* Appends p[0..len) to out as valid UTF-8: each maximal invalid subpart becomes U+FFFD (the
 * Unicode "best practice", which is also what Python's errors="replace" does). Unless final,
 * a truncated character at the end is left unconsumed. Returns the number of bytes consumed. */
static gsize
utf8_sanitize (GString *out, const guint8 *p, gsize len, gboolean final)
{
  gsize pos = 0;
  while (pos < len) {
    gsize valid = utf8_valid_prefix (p + pos, len - pos);
    g_string_append_len (out, (const char *) p + pos, valid);
    pos += valid;
    if (pos == len)
      break;
    gsize n;
    Utf8Status st = utf8_sequence (p + pos, len - pos, &n);
    if (st == UTF8_TRUNCATED && !final)
      break;
    g_string_append (out, "\xef\xbf\xbd");
    pos += n;
  }
  return pos;
}

/* ---- the Qwen2 pre-tokenizer ----
 *
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*
 *   |\s*[\r\n]+|\s+(?!\S)|\s+
 *
 * The regex is applied left to right, each match starting where the previous one ended,
 * alternatives tried in order; the whole text is covered by matches. next_pretoken gives
 * the end of the match at i, following the backtracking a regex engine would do. */

enum {
  CLASS_OTHER = 0,
  CLASS_LETTER = 1 << 0,  /* \p{L} */
  CLASS_NUMBER = 1 << 1,  /* \p{N} */
  CLASS_SPACE = 1 << 2,   /* \s */
  CLASS_NEWLINE = 1 << 3, /* \r or \n (also CLASS_SPACE) */
};

/* Unicode's White_Space property, which is what \s means in the Unicode-aware engines
 * transformers uses; g_unichar_isspace lacks \v and U+0085. */
static gboolean
is_white_space (gunichar c)
{
  if (c <= 0x20)
    return c == 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0x85)
    return FALSE;
  return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a)
         || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

static guint8
char_class (gunichar c)
{
  if (c == '\r' || c == '\n')
    return CLASS_SPACE | CLASS_NEWLINE;
  if (c < 0x80) {
    if (g_ascii_isalpha (c))
      return CLASS_LETTER;
    if (g_ascii_isdigit (c))
      return CLASS_NUMBER;
    return is_white_space (c) ? CLASS_SPACE : CLASS_OTHER;
  }
  if (is_white_space (c))
    return CLASS_SPACE;
  switch (g_unichar_type (c)) {
    case G_UNICODE_LOWERCASE_LETTER:
    case G_UNICODE_UPPERCASE_LETTER:
    case G_UNICODE_TITLECASE_LETTER:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_OTHER_LETTER:
      return CLASS_LETTER;
    case G_UNICODE_DECIMAL_NUMBER:
    case G_UNICODE_LETTER_NUMBER:
    case G_UNICODE_OTHER_NUMBER:
      return CLASS_NUMBER;
    default:
      return CLASS_OTHER;
  }
}

/* Case-insensitive match of an ASCII letter. Under (?i) the long s (U+017F) case-folds
 * to 's' as well, so it matches "'s" too. */
static inline gboolean
char_is (gunichar c, char lower)
{
  if (c < 0x80)
    return g_ascii_tolower ((int) c) == lower;
  return lower == 's' && c == 0x017f;
}

static gsize
next_pretoken (const gunichar *c, const guint8 *cls, gsize i, gsize n)
{
  /* (?i:'s|'t|'re|'ve|'m|'ll|'d) — no alternative is a prefix of another */
  if (c[i] == '\'' && i + 1 < n) {
    gunichar a = c[i + 1];
    if (char_is (a, 's') || char_is (a, 't') || char_is (a, 'm') || char_is (a, 'd'))
      return i + 2;
    if (i + 2 < n) {
      gunichar b = c[i + 2];
      if ((char_is (a, 'r') && char_is (b, 'e')) || (char_is (a, 'v') && char_is (b, 'e'))
          || (char_is (a, 'l') && char_is (b, 'l')))
        return i + 3;
    }
  }

  /* [^\r\n\p{L}\p{N}]?\p{L}+ */
  gsize k = i;
  if (!(cls[k] & (CLASS_LETTER | CLASS_NUMBER | CLASS_NEWLINE)) && k + 1 < n
      && (cls[k + 1] & CLASS_LETTER))
    k++;
  if (cls[k] & CLASS_LETTER) {
    while (k < n && (cls[k] & CLASS_LETTER))
      k++;
    return k;
  }

  /* \p{N}: one digit at a time in Qwen2 */
  if (cls[i] & CLASS_NUMBER)
    return i + 1;

  /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
  k = i;
  if (c[k] == ' ' && k + 1 < n && cls[k + 1] == CLASS_OTHER)
    k++;
  if (cls[k] == CLASS_OTHER) {
    while (k < n && cls[k] == CLASS_OTHER)
      k++;
    while (k < n && (cls[k] & CLASS_NEWLINE))
      k++;
    return k;
  }

  /* What is left starts with whitespace. */
  gsize end = i;
  gsize last_newline = G_MAXSIZE;
  while (end < n && (cls[end] & CLASS_SPACE)) {
    if (cls[end] & CLASS_NEWLINE)
      last_newline = end;
    end++;
  }
  /* \s*[\r\n]+: \s* gives back characters until [\r\n]+ can match, i.e. down to the last
   * newline of the run, and [\r\n]+ then takes just that one. */
  if (last_newline != G_MAXSIZE)
    return last_newline + 1;
  /* \s+(?!\S): the whole run at the end of the text, else the run less its last character
   * (which then goes with the word after it) */
  if (end == n)
    return end;
  if (end - i >= 2)
    return end - 1;
  /* \s+ */
  return end;
}

/* ---- byte-level BPE ---- */

typedef struct {
  gint32 rank;
  gint32 pos;
} HeapItem;

typedef struct {
  gint32 *id; /* symbol ids, -1 once merged into its left neighbour */
  gint32 *next;
  gint32 *prev;
  HeapItem *heap;
  gsize cap;     /* capacity of id/next/prev */
  gsize heap_cap;
  gsize heap_len;
} BpeScratch;

static void
scratch_clear (BpeScratch *s)
{
  g_free (s->id);
  g_free (s->next);
  g_free (s->prev);
  g_free (s->heap);
}

static inline gboolean
heap_less (const HeapItem *a, const HeapItem *b)
{
  return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void
heap_push (BpeScratch *s, gint32 rank, gint32 pos)
{
  if (s->heap_len == s->heap_cap) {
    s->heap_cap = MAX (64, s->heap_cap * 2);
    s->heap = g_renew (HeapItem, s->heap, s->heap_cap);
  }
  gsize i = s->heap_len++;
  HeapItem item = { rank, pos };
  while (i > 0) {
    gsize parent = (i - 1) / 2;
    if (!heap_less (&item, &s->heap[parent]))
      break;
    s->heap[i] = s->heap[parent];
    i = parent;
  }
  s->heap[i] = item;
}

static HeapItem
heap_pop (BpeScratch *s)
{
  HeapItem top = s->heap[0];
  HeapItem last = s->heap[--s->heap_len];
  gsize i = 0, n = s->heap_len;
  for (;;) {
    gsize child = 2 * i + 1;
    if (child >= n)
      break;
    if (child + 1 < n && heap_less (&s->heap[child + 1], &s->heap[child]))
      child++;
    if (!heap_less (&s->heap[child], &last))
      break;
    s->heap[i] = s->heap[child];
    i = child;
  }
  if (n > 0)
    s->heap[i] = last;
  return top;
}

static void
bpe_push_pair (const QomniTokenizer *tok, BpeScratch *s, gint32 left)
{
  if (left < 0 || s->next[left] < 0)
    return;
  const PairSlot *p = pair_find (tok, s->id[left], s->id[s->next[left]]);
  if (p)
    heap_push (s, p->rank, left);
}

/* Merges the bytes of one pre-token, always the lowest-ranked adjacent pair first and the
 * leftmost of equal pairs, which gives the same result as GPT-2's merge-all-occurrences
 * loop. A heap of candidate pairs keeps long pre-tokens (a paragraph of Chinese is one
 * \p{L}+ run) at n log n; stale heap entries are recognised by their rank no longer
 * matching the pair now at that position (a rank names exactly one pair). */
static void
bpe_encode (const QomniTokenizer *tok, BpeScratch *s, const guint8 *p, gsize n, GArray *out)
{
  if (n > s->cap) {
    s->cap = MAX (n, 2 * s->cap);
    s->id = g_renew (gint32, s->id, s->cap);
    s->next = g_renew (gint32, s->next, s->cap);
    s->prev = g_renew (gint32, s->prev, s->cap);
  }
  for (gsize i = 0; i < n; i++) {
    s->id[i] = tok->byte_ids[p[i]];
    s->prev[i] = (gint32) i - 1;
    s->next[i] = i + 1 < n ? (gint32) i + 1 : -1;
  }
  s->heap_len = 0;
  for (gsize i = 0; i + 1 < n; i++)
    bpe_push_pair (tok, s, (gint32) i);

  while (s->heap_len > 0) {
    HeapItem top = heap_pop (s);
    gint32 left = top.pos;
    if (s->id[left] < 0 || s->next[left] < 0)
      continue;
    gint32 right = s->next[left];
    const PairSlot *pair = pair_find (tok, s->id[left], s->id[right]);
    if (!pair || pair->rank != top.rank)
      continue;
    s->id[left] = pair->merged;
    s->id[right] = -1;
    s->next[left] = s->next[right];
    if (s->next[right] >= 0)
      s->prev[s->next[right]] = left;
    bpe_push_pair (tok, s, s->prev[left]);
    bpe_push_pair (tok, s, left);
  }

  for (gint32 i = 0; i >= 0; i = s->next[i])
    g_array_append_val (out, s->id[i]);
}

static void
encode_pretoken (const QomniTokenizer *tok, BpeScratch *s, const guint8 *p, gsize n,
                 GArray *out)
{
  if (n == 1) {
    g_array_append_val (out, tok->byte_ids[p[0]]);
    return;
  }
  /* Keys are NUL-terminated copies, so pre-tokens with a NUL byte are not cached. */
  gboolean cacheable = n < CACHE_KEY_MAX && !memchr (p, 0, n);
  char key[CACHE_KEY_MAX];
  QomniTokenizer *mut = (QomniTokenizer *) tok; /* the cache is not part of the value */
  if (cacheable) {
    memcpy (key, p, n);
    key[n] = '\0';
    g_mutex_lock (&mut->cache_lock);
    const gint32 *hit = g_hash_table_lookup (mut->cache, key);
    if (hit)
      g_array_append_vals (out, hit + 1, hit[0]);
    g_mutex_unlock (&mut->cache_lock);
    if (hit)
      return;
  }
  guint start = out->len;
  bpe_encode (tok, s, p, n, out);
  if (cacheable) {
    guint count = out->len - start;
    gint32 *ids = g_new (gint32, count + 1);
    ids[0] = (gint32) count;
    memcpy (ids + 1, &g_array_index (out, gint32, start), count * sizeof (gint32));
    g_mutex_lock (&mut->cache_lock);
    if (g_hash_table_size (mut->cache) >= CACHE_MAX)
      g_hash_table_remove_all (mut->cache);
    g_hash_table_replace (mut->cache, g_strdup (key), ids);
    g_mutex_unlock (&mut->cache_lock);
  }
}

/* NFC, applied between NUL bytes: g_utf8_normalize stops at a NUL, and a NUL neither
 * composes nor decomposes, so normalising the stretches between them is the same thing. */
static void
append_nfc (GString *out, const char *text, gsize len)
{
  gboolean ascii = TRUE;
  for (gsize i = 0; i < len && ascii; i++)
    ascii = (guint8) text[i] < 0x80;
  if (ascii) { /* ASCII is its own NFC */
    g_string_append_len (out, text, len);
    return;
  }
  gsize pos = 0;
  while (pos < len) {
    const char *nul = memchr (text + pos, 0, len - pos);
    gsize stretch = nul ? (gsize) (nul - (text + pos)) : len - pos;
    if (stretch > 0) {
      g_autofree char *nfc = g_utf8_normalize (text + pos, stretch, G_NORMALIZE_NFC);
      if (nfc)
        g_string_append (out, nfc);
      else /* cannot happen for validated input; keep the text rather than lose it */
        g_string_append_len (out, text + pos, stretch);
    }
    pos += stretch;
    if (nul) {
      g_string_append_c (out, '\0');
      pos++;
    }
  }
}

/* Encodes text that contains no added tokens (valid UTF-8). */
static void
encode_piece (const QomniTokenizer *tok, BpeScratch *s, const char *text, gsize len,
              GArray *out)
{
  if (len == 0)
    return;
  g_autoptr (GString) nfc = g_string_sized_new (len + 1);
  append_nfc (nfc, text, len);

  const guint8 *p = (const guint8 *) nfc->str;
  gsize n_bytes = nfc->len;
  gunichar *chars = g_new (gunichar, n_bytes);
  guint8 *cls = g_new (guint8, n_bytes);
  gsize *offs = g_new (gsize, n_bytes + 1);
  gsize n = 0;
  for (gsize pos = 0; pos < n_bytes;) {
    gsize len_c;
    utf8_sequence (p + pos, n_bytes - pos, &len_c); /* valid: checked by the caller */
    chars[n] = utf8_decode (p + pos, len_c);
    cls[n] = char_class (chars[n]);
    offs[n] = pos;
    n++;
    pos += len_c;
  }
  offs[n] = n_bytes;

  for (gsize i = 0; i < n;) {
    gsize j = next_pretoken (chars, cls, i, n);
    encode_pretoken (tok, s, p + offs[i], offs[j] - offs[i], out);
    i = j;
  }
  g_free (chars);
  g_free (cls);
  g_free (offs);
}

int *
qomni_tokenizer_encode (const QomniTokenizer *tok, const char *text, gssize len,
                        gboolean split_special, int *n_ids, GError **error)
{
  g_return_val_if_fail (tok != NULL, NULL);
  g_return_val_if_fail (n_ids != NULL, NULL);
  *n_ids = 0;
  if (!text) {
    text = "";
    len = 0;
  }
  gsize n = len < 0 ? strlen (text) : (gsize) len;
  gsize valid = utf8_valid_prefix ((const guint8 *) text, n);
  if (valid != n) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "text to tokenize is not valid UTF-8 (bad byte 0x%02x at offset %" G_GSIZE_FORMAT
                 ")", (guint8) text[valid], valid);
    return NULL;
  }

  BpeScratch s = { 0 };
  GArray *out = g_array_sized_new (FALSE, FALSE, sizeof (int), n / 3 + 8);
  gsize piece = 0;
  if (split_special) {
    for (gsize pos = 0; pos < n;) {
      const AddedToken *hit = NULL;
      if (tok->added_first_byte[(guint8) text[pos]]) {
        for (int a = 0; a < tok->n_added && !hit; a++) {
          const AddedToken *t = &tok->added[a];
          if (t->len <= n - pos && memcmp (text + pos, t->content, t->len) == 0)
            hit = t;
        }
      }
      if (!hit) {
        pos++;
        continue;
      }
      encode_piece (tok, &s, text + piece, pos - piece, out);
      g_array_append_val (out, hit->id);
      pos += hit->len;
      piece = pos;
    }
  }
  encode_piece (tok, &s, text + piece, n - piece, out);
  scratch_clear (&s);

  *n_ids = (int) out->len;
  return (int *) g_array_free (out, FALSE);
}

/* ---- decoding ---- */

const char *
qomni_tokenizer_token_bytes (const QomniTokenizer *tok, int id, gsize *len)
{
  if (!tok || id < 0 || id >= tok->n_tokens || !(tok->flags[id] & TOKEN_VALID)) {
    if (len)
      *len = 0;
    return NULL;
  }
  if (len)
    *len = tok->offsets[id + 1] - tok->offsets[id];
  return (const char *) tok->bytes + tok->offsets[id];
}

gboolean
qomni_tokenizer_is_special (const QomniTokenizer *tok, int id)
{
  return tok && id >= 0 && id < tok->n_tokens && (tok->flags[id] & TOKEN_SPECIAL);
}

/* Appends the bytes of id unless it is unknown or a special token that is skipped. */
static void
append_token_bytes (const QomniTokenizer *tok, GByteArray *buf, int id, gboolean skip_special)
{
  gsize len;
  const char *b = qomni_tokenizer_token_bytes (tok, id, &len);
  if (!b || (skip_special && qomni_tokenizer_is_special (tok, id)))
    return;
  g_byte_array_append (buf, (const guint8 *) b, len);
}

char *
qomni_tokenizer_decode (const QomniTokenizer *tok, const int *ids, int n_ids,
                        gboolean skip_special)
{
  g_return_val_if_fail (tok != NULL, NULL);
  g_autoptr (GByteArray) raw = g_byte_array_new ();
  for (int i = 0; i < n_ids; i++)
    append_token_bytes (tok, raw, ids[i], skip_special);
  GString *out = g_string_sized_new (raw->len + 1);
  utf8_sanitize (out, raw->data, raw->len, TRUE);
  return g_string_free (out, FALSE);
}

struct _QomniStreamDecoder {
  const QomniTokenizer *tok;
  gboolean skip_special;
  GByteArray *pending; /* at most the first 3 bytes of one character between calls */
};

QomniStreamDecoder *
qomni_stream_decoder_new (const QomniTokenizer *tok, gboolean skip_special)
{
  g_return_val_if_fail (tok != NULL, NULL);
  QomniStreamDecoder *dec = g_new0 (QomniStreamDecoder, 1);
  dec->tok = tok;
  dec->skip_special = skip_special;
  dec->pending = g_byte_array_new ();
  return dec;
}

char *
qomni_stream_decoder_push (QomniStreamDecoder *dec, int id)
{
  g_return_val_if_fail (dec != NULL, NULL);
  append_token_bytes (dec->tok, dec->pending, id, dec->skip_special);
  GString *out = g_string_new (NULL);
  gsize used = utf8_sanitize (out, dec->pending->data, dec->pending->len, FALSE);
  g_byte_array_remove_range (dec->pending, 0, used);
  return g_string_free (out, FALSE);
}

char *
qomni_stream_decoder_flush (QomniStreamDecoder *dec)
{
  g_return_val_if_fail (dec != NULL, NULL);
  GString *out = g_string_new (NULL);
  utf8_sanitize (out, dec->pending->data, dec->pending->len, TRUE);
  g_byte_array_set_size (dec->pending, 0);
  return g_string_free (out, FALSE);
}

void
qomni_stream_decoder_free (QomniStreamDecoder *dec)
{
  if (!dec)
    return;
  g_byte_array_unref (dec->pending);
  g_free (dec);
}

/* ---- lookups ---- */

int
qomni_tokenizer_n_tokens (const QomniTokenizer *tok)
{
  return tok ? tok->n_tokens : 0;
}

int
qomni_tokenizer_token_id (const QomniTokenizer *tok, const char *token)
{
  g_return_val_if_fail (tok != NULL, -1);
  if (!token)
    return -1;
  gsize len = strlen (token);
  for (int a = 0; a < tok->n_added; a++)
    if (tok->added[a].len == len && memcmp (tok->added[a].content, token, len) == 0)
      return tok->added[a].id;
  gpointer v = g_hash_table_lookup (tok->vocab, token);
  return v ? GPOINTER_TO_INT (v) - 1 : -1;
}

int
qomni_tokenizer_byte_token_id (const QomniTokenizer *tok, guint8 byte)
{
  g_return_val_if_fail (tok != NULL, -1);
  return tok->byte_ids[byte];
}

/* ---- loading ---- */

void
qomni_tokenizer_free (QomniTokenizer *tok)
{
  if (!tok)
    return;
  g_free (tok->offsets);
  g_free (tok->flags);
  g_free (tok->bytes);
  if (tok->vocab)
    g_hash_table_destroy (tok->vocab);
  if (tok->strings)
    g_string_chunk_free (tok->strings);
  g_free (tok->pairs);
  g_free (tok->added);
  if (tok->cache)
    g_hash_table_destroy (tok->cache);
  g_mutex_clear (&tok->cache_lock);
  g_free (tok);
}

/* Parses a JSON file whose root must be an object. */
static JsonParser *
parse_json_object (const char *path, GError **error)
{
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "%s: no such file", path);
    return NULL;
  }
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) err = NULL;
  if (!json_parser_load_from_mapped_file (parser, path, &err)) {
    gboolean io = err->domain == G_FILE_ERROR;
    g_set_error (error, QOMNI_ERROR, io ? QOMNI_ERROR_IO : QOMNI_ERROR_FORMAT, "%s: %s", path,
                 err->message);
    return NULL;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT, "%s: the top level is not an object",
                 path);
    return NULL;
  }
  return g_steal_pointer (&parser);
}

/* Reads vocab.json ({"token": id, ...}) into vocab_form[id] (strings in tok->strings). */
static gboolean
load_vocab (QomniTokenizer *tok, const char *path, GPtrArray *vocab_form, GError **error)
{
  g_autoptr (JsonParser) parser = parse_json_object (path, error);
  if (!parser)
    return FALSE;
  JsonObject *obj = json_node_get_object (json_parser_get_root (parser));
  guint size = json_object_get_size (obj);
  if (size == 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT, "%s: the vocabulary is empty", path);
    return FALSE;
  }
  tok->vocab = g_hash_table_new (g_str_hash, g_str_equal);
  g_ptr_array_set_size (vocab_form, size);

  JsonObjectIter iter;
  const char *name;
  JsonNode *node;
  json_object_iter_init (&iter, obj);
  while (json_object_iter_next (&iter, &name, &node)) {
    if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s: the id of token \"%s\" is not an integer", path, name);
      return FALSE;
    }
    gint64 id = json_node_get_int (node);
    if (id < 0 || id >= MAX_TOKEN_ID) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s: token \"%s\" has id %" G_GINT64_FORMAT ", out of range", path, name, id);
      return FALSE;
    }
    if ((guint) id >= vocab_form->len)
      g_ptr_array_set_size (vocab_form, (guint) id + 1);
    if (g_ptr_array_index (vocab_form, id)) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s: id %" G_GINT64_FORMAT " is given to both \"%s\" and \"%s\"", path, id,
                   (const char *) g_ptr_array_index (vocab_form, id), name);
      return FALSE;
    }
    if (g_hash_table_contains (tok->vocab, name)) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT, "%s: token \"%s\" is listed twice",
                   path, name);
      return FALSE;
    }
    if (!g_utf8_validate (name, -1, NULL)) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s: the token with id %" G_GINT64_FORMAT " is not valid UTF-8", path, id);
      return FALSE;
    }
    char *form = g_string_chunk_insert (tok->strings, name);
    g_ptr_array_index (vocab_form, id) = form;
    g_hash_table_insert (tok->vocab, form, GINT_TO_POINTER ((int) id + 1));
  }
  return TRUE;
}

/* Reads merges.txt: an optional "#version" line, then one "left right" pair per line, in
 * rank order. Both halves and their concatenation must be vocabulary tokens. */
static gboolean
load_merges (QomniTokenizer *tok, const char *path, GError **error)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (GMappedFile) mapped = g_mapped_file_new (path, FALSE, &err);
  if (!mapped) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "%s: %s", path, err->message);
    return FALSE;
  }
  const char *data = g_mapped_file_get_contents (mapped);
  gsize size = g_mapped_file_get_length (mapped);

  gsize lines = 1;
  for (const char *p = data; p && (p = memchr (p, '\n', size - (p - data))); p++)
    lines++;
  guint64 cap = 16;
  while (cap < 2 * (guint64) lines)
    cap *= 2;
  tok->pair_mask = cap - 1;
  tok->pairs = g_new (PairSlot, cap);
  for (guint64 i = 0; i < cap; i++)
    tok->pairs[i].key = PAIR_EMPTY;

  g_autoptr (GString) line = g_string_new (NULL);
  int rank = 0;
  gsize pos = 0;
  for (gsize line_no = 1; pos < size; line_no++) {
    const char *nl = memchr (data + pos, '\n', size - pos);
    gsize end = nl ? (gsize) (nl - data) : size;
    g_string_truncate (line, 0);
    g_string_append_len (line, data + pos, end - pos);
    pos = end + 1;
    if (line->len > 0 && line->str[line->len - 1] == '\r')
      g_string_truncate (line, line->len - 1);
    if (line->len == 0 || (line_no == 1 && g_str_has_prefix (line->str, "#version")))
      continue;

    char *space = strchr (line->str, ' ');
    if (strlen (line->str) != line->len || !space || space == line->str || !space[1]
        || strchr (space + 1, ' ')) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s:%" G_GSIZE_FORMAT ": expected two tokens separated by one space", path,
                   line_no);
      return FALSE;
    }
    *space = '\0';
    const char *left = line->str, *right = space + 1;
    gpointer l = g_hash_table_lookup (tok->vocab, left);
    gpointer r = g_hash_table_lookup (tok->vocab, right);
    if (!l || !r) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s:%" G_GSIZE_FORMAT ": \"%s\" is not in the vocabulary", path, line_no,
                   !l ? left : right);
      return FALSE;
    }
    *space = ' ';
    g_string_erase (line, space - line->str, 1);
    gpointer m = g_hash_table_lookup (tok->vocab, line->str);
    if (!m) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s:%" G_GSIZE_FORMAT ": the merged token \"%s\" is not in the vocabulary",
                   path, line_no, line->str);
      return FALSE;
    }
    pair_insert (tok, GPOINTER_TO_INT (l) - 1, GPOINTER_TO_INT (r) - 1, rank++,
                 GPOINTER_TO_INT (m) - 1);
  }
  return TRUE;
}

static void
add_token (GArray *added, GStringChunk *strings, int id, const char *content, gboolean special)
{
  for (guint i = 0; i < added->len; i++) {
    AddedToken *t = &g_array_index (added, AddedToken, i);
    if (t->id == id || strcmp (t->content, content) == 0)
      return; /* the first definition wins */
  }
  AddedToken t = { g_string_chunk_insert (strings, content), strlen (content), id, special };
  g_array_append_val (added, t);
}

/* Reads added_tokens_decoder from tokenizer_config.json: {"151643": {"content": ...,
 * "special": true, ...}, ...}. The lstrip/rstrip/single_word flags are all false for Qwen
 * and are not implemented. */
static gboolean
load_added_tokens (QomniTokenizer *tok, const char *path, GArray *added, GError **error)
{
  g_autoptr (JsonParser) parser = parse_json_object (path, error);
  if (!parser)
    return FALSE;
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  JsonNode *decoder = json_object_get_member (root, "added_tokens_decoder");
  if (!decoder)
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (decoder)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "%s: added_tokens_decoder is not an object", path);
    return FALSE;
  }
  JsonObjectIter iter;
  const char *key;
  JsonNode *node;
  json_object_iter_init (&iter, json_node_get_object (decoder));
  while (json_object_iter_next (&iter, &key, &node)) {
    gint64 id;
    if (!g_ascii_string_to_signed (key, 10, 0, MAX_TOKEN_ID - 1, &id, NULL)) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s: added_tokens_decoder: \"%s\" is not a token id", path, key);
      return FALSE;
    }
    JsonObject *o = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
    JsonNode *content = o ? json_object_get_member (o, "content") : NULL;
    if (!content || !JSON_NODE_HOLDS_VALUE (content)
        || json_node_get_value_type (content) != G_TYPE_STRING
        || !*json_node_get_string (content)) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s: added_tokens_decoder.%s has no content string", path, key);
      return FALSE;
    }
    if (!g_utf8_validate (json_node_get_string (content), -1, NULL)) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s: added_tokens_decoder.%s: the content is not valid UTF-8", path, key);
      return FALSE;
    }
    JsonNode *special = json_object_get_member (o, "special");
    gboolean is_special = special && JSON_NODE_HOLDS_VALUE (special)
                          && json_node_get_value_type (special) == G_TYPE_BOOLEAN
                          && json_node_get_boolean (special);
    add_token (added, tok->strings, (int) id, json_node_get_string (content), is_special);
  }
  return TRUE;
}

static int
compare_added_longest_first (gconstpointer a, gconstpointer b)
{
  const AddedToken *x = a, *y = b;
  if (x->len != y->len)
    return x->len > y->len ? -1 : 1;
  return x->id - y->id;
}

/* Lays out the bytes of every id: vocabulary tokens translated from their byte->unicode
 * form, added tokens as their content. */
static gboolean
build_token_table (QomniTokenizer *tok, const char *vocab_path, GPtrArray *vocab_form,
                   GError **error)
{
  gunichar byte_to_char[256];
  int char_to_byte[324];
  byte_unicode_table (byte_to_char, char_to_byte);

  int n_tokens = (int) vocab_form->len;
  for (int a = 0; a < tok->n_added; a++)
    n_tokens = MAX (n_tokens, tok->added[a].id + 1);
  tok->n_tokens = n_tokens;
  tok->flags = g_new0 (guint8, n_tokens);
  tok->offsets = g_new (guint32, n_tokens + 1);
  const char **added_content = g_new0 (const char *, n_tokens);
  for (int a = 0; a < tok->n_added; a++) {
    const AddedToken *t = &tok->added[a];
    added_content[t->id] = t->content;
    tok->flags[t->id] = TOKEN_VALID | TOKEN_ADDED | (t->special ? TOKEN_SPECIAL : 0);
  }

  GByteArray *bytes = g_byte_array_sized_new (4 * n_tokens);
  gboolean ok = TRUE;
  for (int id = 0; id < n_tokens && ok; id++) {
    tok->offsets[id] = bytes->len;
    if (added_content[id]) {
      g_byte_array_append (bytes, (const guint8 *) added_content[id],
                           strlen (added_content[id]));
      continue;
    }
    const char *form = id < (int) vocab_form->len ? g_ptr_array_index (vocab_form, id) : NULL;
    if (!form)
      continue;
    tok->flags[id] = TOKEN_VALID;
    for (const char *p = form; *p; p = g_utf8_next_char (p)) {
      gunichar c = g_utf8_get_char (p);
      if (c >= G_N_ELEMENTS (char_to_byte) || char_to_byte[c] < 0) {
        g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                     "%s: token \"%s\" (id %d) is not in byte-level form (U+%04X)", vocab_path,
                     form, id, c);
        ok = FALSE;
        break;
      }
      guint8 b = (guint8) char_to_byte[c];
      g_byte_array_append (bytes, &b, 1);
    }
  }
  tok->offsets[n_tokens] = bytes->len;
  tok->bytes = g_byte_array_free (bytes, FALSE);
  g_free (added_content);
  if (!ok)
    return FALSE;

  /* Every byte needs a token of its own, or some text could not be encoded. */
  for (int b = 0; b < 256; b++) {
    char form[8];
    form[g_unichar_to_utf8 (byte_to_char[b], form)] = '\0';
    gpointer v = g_hash_table_lookup (tok->vocab, form);
    if (!v) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s: there is no token for the byte 0x%02x (\"%s\")", vocab_path, b, form);
      return FALSE;
    }
    tok->byte_ids[b] = GPOINTER_TO_INT (v) - 1;
  }
  return TRUE;
}

static QomniTokenizer *
load_files (const char *vocab_path, const char *merges_path, const char *config_path,
            GError **error)
{
  g_autoptr (QomniTokenizer) tok = g_new0 (QomniTokenizer, 1);
  g_mutex_init (&tok->cache_lock);
  tok->strings = g_string_chunk_new (1 << 20);
  tok->cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  g_autoptr (GPtrArray) vocab_form = g_ptr_array_new ();
  if (!load_vocab (tok, vocab_path, vocab_form, error))
    return NULL;
  if (!load_merges (tok, merges_path, error))
    return NULL;

  g_autoptr (GArray) added = g_array_new (FALSE, FALSE, sizeof (AddedToken));
  if (config_path && !load_added_tokens (tok, config_path, added, error))
    return NULL;
  for (guint i = 0; i < G_N_ELEMENTS (omni_extra_tokens); i++)
    add_token (added, tok->strings, omni_extra_tokens[i].id, omni_extra_tokens[i].content,
               TRUE);
  g_array_sort (added, compare_added_longest_first);
  tok->n_added = (int) added->len;
  tok->added = (AddedToken *) g_array_free (g_steal_pointer (&added), FALSE);
  for (int a = 0; a < tok->n_added; a++)
    tok->added_first_byte[(guint8) tok->added[a].content[0]] = TRUE;

  if (!build_token_table (tok, vocab_path, vocab_form, error))
    return NULL;
  return g_steal_pointer (&tok);
}

QomniTokenizer *
qomni_tokenizer_load (const char *dir, GError **error)
{
  g_return_val_if_fail (dir != NULL, NULL);
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "tokenizer folder %s does not exist", dir);
    return NULL;
  }
  g_autofree char *vocab = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (dir, "merges.txt", NULL);
  g_autofree char *config = g_build_filename (dir, "tokenizer_config.json", NULL);
  return load_files (vocab, merges, g_file_test (config, G_FILE_TEST_EXISTS) ? config : NULL,
                     error);
}

static gboolean
has_vocab (const char *dir)
{
  if (!dir || !*dir)
    return FALSE;
  g_autofree char *vocab = g_build_filename (dir, "vocab.json", NULL);
  return g_file_test (vocab, G_FILE_TEST_IS_REGULAR);
}

char *
qomni_tokenizer_find_shipped_dir (void)
{
  const char *candidates[] = {
    g_getenv ("QOMNI_TOKENIZER_DIR"),
    QOMNI_INSTALLED_TOKENIZER_DIR,
    QOMNI_SOURCE_TOKENIZER_DIR,
  };
  for (guint i = 0; i < G_N_ELEMENTS (candidates); i++)
    if (has_vocab (candidates[i]))
      return g_strdup (candidates[i]);
  return NULL;
}

QomniTokenizer *
qomni_tokenizer_load_for_model (const char *model_dir, GError **error)
{
  g_autofree char *shipped = qomni_tokenizer_find_shipped_dir ();
  g_autofree char *shipped_config =
    shipped ? g_build_filename (shipped, "tokenizer_config.json", NULL) : NULL;
  if (shipped_config && !g_file_test (shipped_config, G_FILE_TEST_EXISTS))
    g_clear_pointer (&shipped_config, g_free);

  if (model_dir) {
    g_autofree char *vocab = g_build_filename (model_dir, "vocab.json", NULL);
    g_autofree char *merges = g_build_filename (model_dir, "merges.txt", NULL);
    g_autofree char *config = g_build_filename (model_dir, "tokenizer_config.json", NULL);
    if (g_file_test (vocab, G_FILE_TEST_IS_REGULAR)
        && g_file_test (merges, G_FILE_TEST_IS_REGULAR)) {
      /* A folder with a vocabulary but no config still needs the ChatML tokens: take
       * them from the shipped config, which is Qwen3's. */
      gboolean own_config = g_file_test (config, G_FILE_TEST_EXISTS);
      return load_files (vocab, merges, own_config ? config : shipped_config, error);
    }
  }
  if (!shipped) {
    g_autofree char *where =
      model_dir ? g_strdup_printf ("%s has no vocab.json and merges.txt, and ", model_dir)
                : g_strdup ("");
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO,
                 "no tokenizer: %sno vocab.json was found in $QOMNI_TOKENIZER_DIR, %s or %s",
                 where, QOMNI_INSTALLED_TOKENIZER_DIR, QOMNI_SOURCE_TOKENIZER_DIR);
    return NULL;
  }
  return qomni_tokenizer_load (shipped, error);
}
