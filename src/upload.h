/*
 * upload.h
 *		Sources a client sends: uploads in chunks and large objects.
 */
#ifndef INGEST_UPLOAD_H
#define INGEST_UPLOAD_H

extern void upload_init(void);

#endif							/* INGEST_UPLOAD_H */
