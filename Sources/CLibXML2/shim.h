#ifndef SWITCHBOARD_CLIBXML2_SHIM_H
#define SWITCHBOARD_CLIBXML2_SHIM_H
/* Debian's libxml2 is built with ICU, so its encoding.h pulls in the system ICU headers.
   Foundation carries its own, newer ICU (_FoundationICU) with a different UErrorCode, and a
   Swift file that sees both fails to compile depending on build order. Switchboard never
   touches the ICU converter fields (it only holds pointers to encoding handlers), so the
   ICU part of the headers is left out. */
#include <libxml/xmlversion.h>
#undef LIBXML_ICU_ENABLED
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlsave.h>
#include <libxml/xmlschemas.h>
#include <libxml/xmlIO.h>
#include <libxml/globals.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/dict.h>
#include <libxslt/xslt.h>
#include <libxslt/xsltInternals.h>
#include <libxslt/transform.h>
#include <libxslt/xsltutils.h>
#include <libxslt/security.h>
#include <libxslt/documents.h>
#include <libxslt/variables.h>
#include <libxml/parserInternals.h>
#include <libexslt/exslt.h>

/* libxml2's generic error callback is variadic, which Swift cannot declare; these helpers
   route every libxml2 error away from stderr. Errors are read from parser and XPath
   contexts instead, where they belong to one call. */
static void switchboard_xml_ignore_generic(void *ctx, const char *msg, ...) {
    (void)ctx;
    (void)msg;
}

static void switchboard_xml_ignore_structured(void *ctx, xmlErrorPtr error) {
    (void)ctx;
    (void)error;
}

/* Sets the no-op handlers for this thread and as the default for threads that first use
   libxml2 later. */
static inline void switchboard_xml_silence(void) {
    xmlSetGenericErrorFunc(NULL, switchboard_xml_ignore_generic);
    xmlThrDefSetGenericErrorFunc(NULL, switchboard_xml_ignore_generic);
    xmlSetStructuredErrorFunc(NULL, switchboard_xml_ignore_structured);
    xmlThrDefSetStructuredErrorFunc(NULL, switchboard_xml_ignore_structured);
}
/* xmlFree is a global function pointer, which Swift 6 treats as shared mutable state. */
static inline void switchboard_xml_free(void *pointer) {
    xmlFree(pointer);
}

/* ---- libxslt and EXSLT ---- */

/* Text that libxslt reports (compile errors, xsl:message output), collected per call.
   libxslt's error callbacks are variadic, which Swift cannot declare, hence these helpers. */
typedef struct {
    char *data;
    size_t length;
} switchboard_text;

static void switchboard_text_append(void *context, const char *format, ...) {
    switchboard_text *text = (switchboard_text *)context;
    if (text == NULL || format == NULL) return;
    va_list arguments;
    va_start(arguments, format);
    char chunk[1024];
    int written = vsnprintf(chunk, sizeof chunk, format, arguments);
    va_end(arguments);
    if (written <= 0) return;
    size_t count = (size_t)written < sizeof chunk ? (size_t)written : sizeof chunk - 1;
    if (text->length > 64 * 1024) return; /* enough to explain any failure */
    char *grown = (char *)realloc(text->data, text->length + count + 1);
    if (grown == NULL) return;
    memcpy(grown + text->length, chunk, count);
    text->length += count;
    grown[text->length] = 0;
    text->data = grown;
}

static void switchboard_xslt_ignore(void *context, const char *format, ...) {
    (void)context;
    (void)format;
}

/* Collects a transform's messages and errors in `text`. */
static inline void switchboard_xslt_collect_transform(xsltTransformContextPtr context, switchboard_text *text) {
    xsltSetTransformErrorFunc(context, text, switchboard_text_append);
}

/* Collects errors of stylesheet compilation (process-wide; callers serialize). */
static inline void switchboard_xslt_collect_generic(switchboard_text *text) {
    if (text != NULL) {
        xsltSetGenericErrorFunc(text, switchboard_text_append);
    } else {
        xsltSetGenericErrorFunc(NULL, switchboard_xslt_ignore);
    }
}

/* Fails a transform from inside a document() load with the reason, where libxslt would go on
   with an empty node-set: the reason joins the transform's messages and the transform stops. */
static inline void switchboard_xslt_fail(xsltTransformContextPtr context, const char *reason) {
    if (context == NULL) return;
    xsltTransformError(context, NULL, NULL, "%s\n", reason);
    context->state = XSLT_STATE_STOPPED;
}

static inline void switchboard_text_free(switchboard_text *text) {
    free(text->data);
    text->data = NULL;
    text->length = 0;
}

/* libxml2's element nesting limit (a process-wide variable), read and set once at start-up. */
static inline unsigned int switchboard_xml_max_depth(void) { return xmlParserMaxDepth; }
static inline void switchboard_xml_set_max_depth(unsigned int depth) { xmlParserMaxDepth = depth; }

#endif
