/*  sluice_export.h - what libsluice.so exports.

    The library is built with -fvisibility=hidden: only declarations marked SLUICE_EXPORT (the
    public API in include/) are visible to programs linked against the shared library. The
    static library keeps every symbol, so tests and benchmarks may also use internal headers.
*/
#ifndef SLUICE_EXPORT_H_INCLUDED
#define SLUICE_EXPORT_H_INCLUDED

#if defined(__GNUC__) || defined(__clang__)
#   define SLUICE_EXPORT __attribute__ ((visibility ("default")))
#else
#   define SLUICE_EXPORT
#endif

#endif
