/*  sluice.h - an actor runtime for streaming pipelines, on ZeroMQ.
    Include this one header; link with -lsluice (pkg-config --cflags --libs sluice). */
#ifndef SLUICE_H_INCLUDED
#define SLUICE_H_INCLUDED

#define SLUICE_VERSION_MAJOR 0
#define SLUICE_VERSION_MINOR 1
#define SLUICE_VERSION_PATCH 0

#include "sluice_export.h"
#include "sluice_error.h"
#include "sluice_protocol.h"
#include "sluice_status.h"
#include "sluice_client.h"
#include "sluice_curve.h"
#include "sluice_events.h"
#include "sluice_buffer.h"
#include "sluice_stream.h"
#include "sluice_writer.h"
#include "sluice_reader.h"
#include "sluice_model.h"
#include "sluice_stage.h"
#include "sluice_input.h"
#include "sluice_pipeline.h"

#endif
