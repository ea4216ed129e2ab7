import t from 'tap'
import { median } from './median.js'

t.test('median of odd, even and empty lists', async (t) => {
  t.equal(median([3, 1, 2]), 2)
  t.equal(median([4, 1, 3, 2]), 2.5)
  t.equal(median([7]), 7)
  t.equal(median([]), 0)
  const input = [5, 1, 9]
  median(input)
  t.same(input, [5, 1, 9], 'the input is not sorted in place')
})
