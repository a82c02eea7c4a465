import type { Schema } from './schema.js';

/** An `additionalPrinterColumns` entry: what `kubectl get` shows. */
export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description: string;
  /** 0 (default): always shown; 1: only with `-o wide`. */
  priority?: number;
  format?: string;
}

/** Everything the CRD generator needs to know about one kind, besides group and version. */
export interface KindDefinition<Spec = unknown, Status = unknown> {
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  categories: string[];
  description: string;
  spec: Schema<Spec>;
  status: Schema<Status>;
  printerColumns: PrinterColumn[];
}

export function readyColumns(): PrinterColumn[] {
  return [
    {
      name: 'Ready',
      type: 'string',
      jsonPath: '.status.conditions[?(@.type=="Ready")].status',
      description: 'Status of the Ready condition.',
    },
    {
      name: 'Reason',
      type: 'string',
      jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
      description: 'Reason of the Ready condition.',
    },
  ];
}

export const AGE_COLUMN: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since the object was created.',
};
