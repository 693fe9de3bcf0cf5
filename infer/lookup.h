/* lookup.h — prompt lookup drafting: the last few tokens are looked up earlier in the sequence (prompt and output),
 * and what followed them there is proposed as the draft. Code repeats its context (identifiers, the line being
 * edited, the suffix), so this drafts well without any draft model and costs no forward pass. */
#ifndef SC_INFER_LOOKUP_H
#define SC_INFER_LOOKUP_H

#include <stdint.h>

/* Proposes kmax tokens after ids[0..n): for m = ngram down to 1, the most recent earlier occurrence of the last m
 * ids; out gets the ids that followed it, repeated with the match's period where they reach the end of ids.
 * Returns how many (kmax, or 0: no match). */
int lookup_draft(const int32_t *ids, int n, int ngram, int kmax, int32_t *out);

#endif
