/**
 * Extraction throughput on generated inputs: PDF text-layer pages per second and OCR images per second, with the
 * peak resident set size seen while they ran: this process (OCR runs in a worker thread of it) plus the extraction
 * sandbox's worker processes.
 */
import { makePdf, encodePng, renderTextLines } from './fixtures/index.js';
import { closeExtraction, extractFile, sandboxResidentBytes, warmUpOcr } from './index.js';

export interface ExtractionBench {
  pdfPagesPerSec: number;
  ocrImagesPerSec: number;
  peakRssMb: number;
  /** wall-clock seconds of each phase (OCR excludes worker start-up, reported separately) */
  pdfSeconds: number;
  ocrSeconds: number;
  ocrStartupSeconds: number;
}

const PARAGRAPH =
  'Shipment delayed at the regional hub while customs paperwork is checked; the carrier expects to release the ' +
  'container within two working days and will confirm the new delivery window by email.';

export async function benchExtraction({
  pdfPages,
  images,
}: {
  pdfPages: number;
  images: number;
}): Promise<ExtractionBench> {
  let peak = process.memoryUsage().rss + sandboxResidentBytes();
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss + sandboxResidentBytes());
  }, 20);
  sampler.unref();
  try {
    const pages = Array.from({ length: pdfPages }, (_, i) => ({
      lines: Array.from({ length: 30 }, (_, l) => `${i + 1}.${l + 1} ${PARAGRAPH.slice(0, 90)}`),
    }));
    const pdf = makePdf({ pages, info: { title: 'bench' } });
    let t = performance.now();
    const r = await extractFile(
      { bytes: pdf, fileName: 'bench.pdf' },
      { ocr: false, maxBytes: Infinity, timeoutMs: 600_000 },
    );
    const pdfSeconds = (performance.now() - t) / 1000;
    if (!r.ok) throw new Error(`PDF bench extraction failed: ${r.code}: ${r.reason}`);
    if (r.metadata.pageCount !== pdfPages)
      throw new Error(`PDF bench read ${r.metadata.pageCount} of ${pdfPages} pages`);

    const pngs = Array.from({ length: images }, (_, i) =>
      encodePng(renderTextLines([`INVOICE ${1000 + i} RECEIVED`, 'PAYMENT DUE IN 30 DAYS', 'CONTOSO LOGISTICS'])),
    );
    t = performance.now();
    await warmUpOcr(['eng']);
    const ocrStartupSeconds = (performance.now() - t) / 1000;
    t = performance.now();
    for (const png of pngs) {
      const o = await extractFile(
        { bytes: png, fileName: 'bench.png' },
        { ocr: true, maxBytes: Infinity, timeoutMs: 120_000 },
      );
      if (!o.ok) throw new Error(`OCR bench extraction failed: ${o.code}: ${o.reason}`);
    }
    const ocrSeconds = (performance.now() - t) / 1000;
    peak = Math.max(peak, process.memoryUsage().rss + sandboxResidentBytes());
    return {
      pdfPagesPerSec: pdfSeconds > 0 ? pdfPages / pdfSeconds : 0,
      ocrImagesPerSec: ocrSeconds > 0 && images > 0 ? images / ocrSeconds : 0,
      peakRssMb: peak / (1024 * 1024),
      pdfSeconds,
      ocrSeconds,
      ocrStartupSeconds,
    };
  } finally {
    clearInterval(sampler);
    await closeExtraction();
  }
}
