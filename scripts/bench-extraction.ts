/**
 * Prints extraction throughput (PDF text pages/s, OCR images/s) and peak RSS as JSON.
 * Node 20 cannot run TypeScript directly; compile this one script and run it:
 *   npx tsc scripts/bench-extraction.ts --outDir .local/scripts --module nodenext --target es2022 --strict --skipLibCheck \
 *     && node .local/scripts/scripts/bench-extraction.js [pdfPages=200] [images=5]
 */
import { benchExtraction } from '../src/extract/bench.js';

const pdfPages = Number(process.argv[2] ?? 200);
const images = Number(process.argv[3] ?? 5);
const r = await benchExtraction({ pdfPages, images });
console.log(
  JSON.stringify(
    {
      pdfPages,
      images,
      pdfPagesPerSec: Math.round(r.pdfPagesPerSec * 10) / 10,
      ocrImagesPerSec: Math.round(r.ocrImagesPerSec * 100) / 100,
      ocrStartupSeconds: Math.round(r.ocrStartupSeconds * 100) / 100,
      peakRssMb: Math.round(r.peakRssMb),
    },
    null,
    2,
  ),
);
