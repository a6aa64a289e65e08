import type { AttachmentService } from '../attachments/index.js';
import type { OperationOptions } from '../core/async.js';
import type { Telemetry } from '../core/telemetry.js';
import type { ExternalGroup } from '../config/model.js';
import type { GraphConnectorClient } from '../graph/client.js';
import type { Logger } from '../log.js';
import type { Mapper } from '../mapping/mapper.js';
import type { Source, SourceProgress } from '../sources/types.js';
import type { StateLayer } from '../state/index.js';
import type { ControlQueue } from '../state/queues/control.js';

export interface PipelineSettings {
  /** The largest share of the snapshot a sweep may delete without force (SWEEP_MAX_DELETE_RATIO). */
  maxDeleteRatio: number;
  /** How long a crawl's lease lasts without renewal; renewed while enumerating and on every finalize check. */
  leaseTtlMs: number;
  /** First delay between finalize checks; doubles up to maxFinalizeDelayMs. */
  finalizeDelayMs: number;
  maxFinalizeDelayMs: number;
  /** How many times one item may be throttled (429/503) before it is dead-lettered. */
  maxThrottleAttempts: number;
  /** Records per page for sources that choose their page size (files, blobs); REST pages are the service's. */
  pageSize: number;
  /** How long one enumeration slice (one invocation) reads before it checkpoints and hands over (CRAWL_SLICE_SECONDS). */
  sliceMs: number;
  /** At most this many pages per slice (0 = no limit; CRAWL_SLICE_PAGES). */
  slicePages: number;
  /** Deliveries of one slice that commit no page before the crawl is failed (a slice that keeps dying). */
  maxSliceStalls: number;
  /** How long an item's fence lasts: its PUT or DELETE must finish well within it. */
  fenceTtlMs: number;
  /** Who runs this (shown to a second crawl that finds the lease taken). */
  holder: string;
}

export const DEFAULT_SETTINGS: PipelineSettings = {
  maxDeleteRatio: 0.1,
  leaseTtlMs: 30 * 60_000,
  finalizeDelayMs: 1_000,
  maxFinalizeDelayMs: 30_000,
  maxThrottleAttempts: 25,
  pageSize: 1000,
  sliceMs: 5 * 60_000,
  slicePages: 0,
  maxSliceStalls: 5,
  fenceTtlMs: 5 * 60_000,
  holder: `pid-${process.pid}`,
};

export interface CrawlProgress {
  crawlId: string;
  phase: 'groups' | 'enumerating' | 'enumerated' | 'sweeping' | 'settling' | 'finished';
  enumerated: number;
  enqueued: number;
  unchanged: number;
  rejected: number;
  /** Pages committed and where the source is (when it can tell). */
  pages?: number;
  /** In phase `groups`: the external groups synced (absent while they are being read and synced). */
  groups?: number;
  progress?: SourceProgress;
}

/** The attachment work of a crawl and an ingest (see the attachments service). */
export type { Mapper };

/**
 * Everything the pipeline needs, passed in — so the same code runs under the Functions host, in the CLI's
 * local worker, and in tests.
 */
export interface PipelineDeps {
  connectionId: string;
  state: StateLayer;
  control: ControlQueue;
  /**
   * A Graph client for the data plane. Ingest uses it with no retries of its own for PUT/DELETE (it re-enqueues
   * instead); addActivities asks for a few retries per call.
   */
  graph: Pick<GraphConnectorClient, 'putItem' | 'deleteItem' | 'addActivities'>;
  /** A fresh source reader for a crawl. */
  source: () => Source;
  mapper: Mapper;
  /**
   * Files records point to (mapping.attachments): fingerprinted by the crawl, read and extracted by the ingest.
   * Absent when the definition has no mapping.attachments.
   */
  attachments?: AttachmentService;
  /**
   * Make sure the connection is ready and sync these external groups (the provisioning orchestration's last
   * step). Called before items are enumerated when the source has groups.
   */
  syncGroups?: (groups: ExternalGroup[], options?: OperationOptions) => Promise<void>;
  logger: Logger;
  /** Metrics of the crawl and the ingest (default: none; see docs/operations.md). */
  telemetry?: Telemetry;
  now: () => number;
  random: () => number;
  settings: PipelineSettings;
  onProgress?: (p: CrawlProgress) => void;
}
