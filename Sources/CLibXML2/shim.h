#ifndef SWITCHBOARD_CLIBXML2_SHIM_H
#define SWITCHBOARD_CLIBXML2_SHIM_H
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlsave.h>
#include <libxml/globals.h>

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
#endif
