/**
 * The virtualised list of a conversation, over TanStack's framework-free `virtual-core`: only the rows near
 * the viewport are in the DOM, so a 10,000-message chat scrolls as smoothly as a short one. Rows are measured
 * as they render (bubbles differ in height); the list is anchored at its end, so rows prepended by loading
 * older history keep the visible ones in place, and new rows follow while the user is at the bottom.
 */
import { elementScroll, measureElement, observeElementOffset, observeElementRect, Virtualizer, type VirtualItem } from '@tanstack/virtual-core';
import { useEffect, useLayoutEffect, useReducer, useState } from 'preact/hooks';

export interface VirtualList {
  readonly items: VirtualItem[];
  readonly totalSize: number;
  readonly virtualizer: Virtualizer<HTMLElement, HTMLElement>;
}

export function useVirtualList(options: { count: number; key: (index: number) => string; estimate: (index: number) => number; scroller: () => HTMLElement | null }): VirtualList {
  const [, rerender] = useReducer((n: number) => n + 1, 0);
  const [v] = useState(
    () =>
      new Virtualizer<HTMLElement, HTMLElement>({
        count: options.count,
        getScrollElement: options.scroller,
        estimateSize: options.estimate,
        getItemKey: options.key,
        overscan: 8,
        scrollToFn: elementScroll,
        observeElementRect,
        observeElementOffset,
        measureElement,
        anchorTo: 'end',
        followOnAppend: true,
        scrollEndThreshold: 48,
        onChange: () => rerender(0),
      }),
  );
  v.setOptions({
    ...v.options,
    count: options.count,
    getScrollElement: options.scroller,
    estimateSize: options.estimate,
    getItemKey: options.key,
    onChange: () => rerender(0),
  });
  useEffect(() => v._didMount(), [v]);
  useLayoutEffect(() => {
    v._willUpdate();
  });
  return { items: v.getVirtualItems(), totalSize: v.getTotalSize(), virtualizer: v };
}
